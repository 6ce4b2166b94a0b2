"""Who is calling, as one :class:`~assay.services.principal.Principal` for the services.

- :mod:`.api_keys`: the REST API and OTLP ingest — ``Authorization: Bearer <API key>``.
- :mod:`.web`: the web UI — the session cookie of a signed-in user, and CSRF protection.

Both fall back to the open mode (a loopback bind while no key and no user exists), in which
the caller is the local user with every role.
"""
