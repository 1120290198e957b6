"""Decision logic: questionnaire, scoring, predictor, batch evaluation (later issues)."""
