"""The only code that talks to the MLflow model registry."""
