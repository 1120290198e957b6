"""The performance predictor behind instant answers: features, estimator, evaluation, and
the compiled form that serving processes evaluate with numpy alone."""
