"""Realistic demo traces, sent through a real OpenTelemetry exporter."""
