"""The Assay HTTP server: OTLP ingest, the REST API and (later) the web UI."""

from assay.server.app import create_app

__all__ = ["create_app"]
