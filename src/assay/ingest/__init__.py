"""OTLP decoding and normalisation of gen_ai.*, OpenInference and assay.* attributes."""
