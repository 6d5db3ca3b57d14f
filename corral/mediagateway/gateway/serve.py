"""`corral gateway`: the app around the orchestrator from the environment, on uvicorn."""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from corral.mediagateway.gateway.app import LOOPBACK_NAMES, create_app
from corral.mediagateway.orchestrator import Orchestrator


def allowed_hosts_for(host: str) -> tuple[str, ...]:
    """The Host names the gateway answers to: loopback names, plus the bind address if it is another."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return LOOPBACK_NAMES
    return (*LOOPBACK_NAMES, f"[{host}]" if ":" in host else host)


async def _serve(host: str, port: int) -> None:
    orchestrator = Orchestrator.from_env()
    users = [(u.id, u.name) for u in orchestrator.catalog.users]
    app = create_app(orchestrator, users=users, allowed_hosts=allowed_hosts_for(host))
    shown = f"[{host}]" if ":" in host else host
    print(f"corral gateway: http://{shown}:{port}/", file=sys.stderr, flush=True)
    try:
        await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).serve()
    finally:
        await orchestrator.aclose()


def serve(*, host: str = "127.0.0.1", port: int = 8080) -> None:
    asyncio.run(_serve(host, port))
