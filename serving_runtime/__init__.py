"""The KServe predictor that serves MLflow models."""
