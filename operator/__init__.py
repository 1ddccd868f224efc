"""The Seaway operator: InferenceModel -> KServe InferenceService."""
