"""Decision logic: questionnaire, evidence, scoring, predictor, batch evaluation."""
