"""Seaway: MLflow-registered models served on Kubernetes through KServe."""

__version__ = "0.1.0"
