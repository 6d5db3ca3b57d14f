"""`corral serve`: run the server in the foreground."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import typer
import uvicorn

from corral.cli.errors import CliError
from corral.cli.keys import create_key
from corral.config import Settings, parse_pool
from corral.store import SandboxState, Store
from corral.tls import DEFAULT_DOMAIN, TlsError, ensure_certificates


def serve(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default 3000)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Where sandbox records and writable layers live (default .data)."),
    template_dir: Path = typer.Option(None, "--template-dir", help="Template store (default /var/lib/corral/templates)."),
    domain: str = typer.Option(None, help="Public domain for {port}-{id}.{domain} sandbox hosts."),
    tls: bool = typer.Option(False, "--tls", help="Serve HTTPS with a local CA and a certificate for *.DOMAIN (default domain e2b.localhost)."),
    pool: str = typer.Option(None, help="Warm pools, e.g. 'code-interpreter-v1=2,base=1' (default: $CORRAL_POOL)."),
    isolation: str = typer.Option(None, help="Default isolation tier: namespace or gvisor (default: $CORRAL_ISOLATION, else namespace). "
                                             "Templates and requests may raise it, never lower it."),
    role: str = typer.Option(None, help="all (default: everything on this machine, SQLite is enough), api (a stateless "
                                         "control plane; run any number) or node (runs this machine's sandboxes). "
                                         "api and node meet through CORRAL_DATABASE_URL (default: $CORRAL_ROLE)."),
    advertise: str = typer.Option(None, help="Role node: the URL at which API replicas reach this node, "
                                             "e.g. http://10.0.3.7:3000 (default: $CORRAL_ADVERTISE)."),
    node_id: str = typer.Option(None, "--node-id", help="Role node: its name in the registry (default: $CORRAL_NODE_ID, "
                                                        "else the host name). A restarted node takes its sandboxes back by it."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the corral server (REST control plane + in-sandbox traffic on one port)."""
    try:
        settings = Settings.from_env(host=host, port=port, data_dir=data_dir, template_dir=template_dir, domain=domain,
                                     pool=parse_pool(pool) if pool is not None else None, tier=isolation,
                                     role=role, advertise_url=advertise, node_id=node_id)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if os.geteuid() != 0 and settings.role != "api":
        raise CliError("corral serve must run as root (it creates namespaces, cgroups and loop devices); "
                       "only --role api runs without")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ssl_args: dict[str, str] = {}
    if tls:
        base_domain = (settings.domain or DEFAULT_DOMAIN).split(":")[0]
        try:
            files = ensure_certificates(settings.data_dir / "tls", base_domain)
        except TlsError as exc:
            raise CliError(str(exc)) from None
        ssl_args = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
        # What the SDK is told in create responses: it builds https://{port}-{id}.{domain} from it.
        settings.domain = base_domain if settings.port == 443 else f"{base_domain}:{settings.port}"
    from corral.cluster import DatabaseGuard, GuardError, api_app, node_app
    from corral.errors import CorralError

    try:
        store = Store(settings.database)
    except CorralError as exc:
        raise CliError(str(exc)) from None
    if settings.role != "node" and not settings.env_api_keys and not store.keys():
        key = create_key(store, "first-run")
        typer.echo(f"No API key was configured, so one was created (shown once, stored hashed):\n  {key}")
    store.engine.dispose()
    guard = None
    if settings.role != "api":
        try:
            guard = DatabaseGuard(settings.database, settings.role).acquire()
        except GuardError as exc:
            raise CliError(str(exc)) from None
    if settings.role == "node" and settings.node_tls_cert:
        ssl_args = {"ssl_certfile": str(settings.node_tls_cert), "ssl_keyfile": str(settings.node_tls_key)}
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every proxied request at INFO: noise, and measurable cost on the hot path.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from corral.api import create_app
    from corral.api.http_protocol import ResettableHttpToolsProtocol

    try:
        app = {"api": api_app, "node": node_app}.get(settings.role, create_app)(settings)
    except CorralError as exc:
        raise CliError(str(exc)) from None
    scheme = "https" if ssl_args else "http"
    if settings.role != "all":
        where = f", advertised as {settings.advertise_url} (node {settings.node_id})" if settings.role == "node" else ""
        typer.echo(f"corral {settings.role} listening on {scheme}://{settings.host}:{settings.port}{where}")
    elif tls:
        typer.echo(f"corral listening on https://{settings.host}:{settings.port} (data dir {settings.data_dir})")
        typer.echo(f"  export E2B_DOMAIN={settings.domain}\n  export SSL_CERT_FILE={files.ca_cert}")
    else:
        typer.echo(f"corral listening on http://{settings.host}:{settings.port} (data dir {settings.data_dir})")
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=log_level.lower(), lifespan="on",
        http=ResettableHttpToolsProtocol, loop="uvloop", ws="websockets", timeout_keep_alive=300,
        access_log=log_level.lower() == "debug", **ssl_args,
    )
    # uvicorn re-raises the stop signal once it has shut down; with these handlers that ends
    # run() instead of the process, so the stop report below is printed.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        pass
    finally:
        if guard is not None:
            guard.release()
    if settings.role != "api":
        report_left_running(settings)


def report_left_running(settings: Settings) -> None:
    """After a graceful stop: say which sandboxes are still running, and until when.

    A stopped server leaves its sandboxes running, so a restart re-adopts them; each one ends by
    itself at its deadline if no server comes back (see docs/SECURITY.md)."""
    store = Store(settings.database, node_id=settings.node_id)
    try:
        left = store.owned([SandboxState.RUNNING, SandboxState.PAUSED])
    finally:
        store.engine.dispose()
    if not left:
        typer.echo("corral stopped; no sandbox left running")
        return
    typer.echo(f"corral stopped; {len(left)} sandbox(es) left running "
               "(a restarted server re-adopts them; running ones end by themselves at their timeout, "
               "paused ones wait for a server):")
    for rec in left:
        typer.echo(f"  {rec.sandbox_id}  {rec.template_id:<24} {rec.state:<8} ends {rec.end_at:%Y-%m-%d %H:%M:%S} UTC")
