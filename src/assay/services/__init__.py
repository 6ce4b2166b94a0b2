"""Use cases: one function each, shared by the REST API, the web UI and the CLI.

Every function takes the acting :class:`~assay.services.principal.Principal`, checks its role
rule, and owns its transaction (a read or a write on the store's :class:`Database`). A refusal
is a typed error (:class:`~assay.errors.NotFound`, :class:`~assay.errors.Forbidden`) that the
API turns into 404/403 JSON and the UI into its error page. Routes only parse, call and render.

Modules by concept: ``projects``, ``traces`` (traces, spans, sessions), ``scores``,
``datasets``, ``experiments``, ``accounts`` (API keys, users, sign-in sessions), ``ingest``
(OTLP export, for the HTTP routes and the gRPC receiver alike), ``logs``; ``filters``
reads trace filters for the API and the UI alike; ``runtime`` is what a running server holds.
"""
