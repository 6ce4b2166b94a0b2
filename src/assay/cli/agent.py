"""`assay agent serve TARGET`: expose the team's agent function to Assay over HTTP.

TARGET is ``MODULE:FUNCTION`` or ``path/to/file.py:FUNCTION``; a module or file alone means
its function named ``agent``, else its only public function. The endpoint listens on loopback
by default (another address needs ``--allow-remote``), registers with the Assay server of the
current configuration (ASSAY_URL, ASSAY_API_KEY; an editor's key) in ``--project``, and answers
only calls that carry the token the server issued then. Every run is traced to the same server
and project. Ctrl-C marks the agent offline on the server.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from assay.errors import UserError
from assay.settings import setting

app = typer.Typer(help="Serve the team's real agent to Assay.", no_args_is_help=True)
console = Console()


@app.callback()
def _group() -> None:
    """Serve the team's real agent to Assay (run it from the playground or a dataset)."""


@app.command("serve")
def serve(
    target: str = typer.Argument(
        ..., help="MODULE:FUNCTION or path/to/file.py:FUNCTION (the function takes one input)."
    ),
    port: int = typer.Option(8700, "--port", help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    project: str | None = typer.Option(
        None, "--project", "-p", help="Project (default $ASSAY_PROJECT)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The agent's name in Assay (default: the function's name)."
    ),
    url: str | None = typer.Option(
        None,
        "--url",
        help="The URL the Assay server calls (default http://HOST:PORT); needed behind NAT "
        "or when listening on every address.",
    ),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow an address other than loopback."
    ),
    server: str | None = typer.Option(None, "--server", help="Assay URL (default $ASSAY_URL)."),
) -> None:
    """Serve TARGET to Assay until Ctrl-C."""
    import assay
    from assay.client import ApiError, Client
    from assay.sdk._serve import (
        AgentServer,
        Heartbeat,
        is_loopback,
        load_target,
        register,
        send_heartbeat,
    )

    if not is_loopback(host) and not allow_remote:
        raise UserError(
            f"--host {host} is not a loopback address: anyone who reaches it could try the "
            "endpoint; pass --allow-remote to serve there anyway (calls still need the token)"
        )
    project = str(setting("project", project))
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    fn, function_name = load_target(target)
    agent_name = name or function_name
    try:
        endpoint = AgentServer((host, port), fn, agent_name)
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    bound = endpoint.server_address[1]
    shown_host = f"[{host}]" if ":" in host else host
    if url is None:
        if host in ("0.0.0.0", "::", ""):
            endpoint.server_close()
            raise UserError("listening on every address: give the URL the server calls, --url")
        url = f"http://{shown_host}:{bound}"
    client = Client(server)
    assay.init(project, url=client.url, api_key=client.api_key)
    try:
        registration = register(client, project, agent_name, url, target)
    except ApiError as refused:
        endpoint.server_close()
        raise UserError(f"the Assay server refused to register the agent: {refused}") from None
    except Exception:
        endpoint.server_close()
        raise
    endpoint.token = registration.token
    heartbeat = Heartbeat(client, registration.id)
    heartbeat.start()
    console.print(
        f"Serving agent [bold]{registration.name}[/] ({target}) at {url}, registered in "
        f"project {project!r} of {client.url} as agent {registration.id}. Ctrl-C stops.",
        highlight=False,
    )
    sys.stdout.flush()
    try:
        endpoint.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        heartbeat.stop()
        endpoint.server_close()
        try:
            send_heartbeat(client, registration.id, False)
            console.print(f"Agent {registration.name} is offline on the server.")
        except Exception as error:
            console.print(f"Could not mark the agent offline on the server: {error}")
        assay.shutdown()
