"""HTTP clients for sandbox sockets, one pooled client per sandbox.

Clients are shared by everything that talks to a sandbox's daemon (the proxy, the warm pool's
hand-over), so the connection the hand-over opens is the one the client's first command uses.
The transport itself (no TLS on a unix socket) is `corral.wire.transport.uds_client`.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from corral.wire.transport import STREAM_TIMEOUT, uds_client

__all__ = ["STREAM_TIMEOUT", "SandboxClients", "uds_client"]


class SandboxClients:
    """Pooled clients keyed by sandbox id; a client is replaced if the socket path changes."""

    def __init__(self) -> None:
        self._clients: dict[str, tuple[Path, httpx.AsyncClient]] = {}

    def get(self, sandbox_id: str, socket: Path) -> httpx.AsyncClient:
        cached = self._clients.get(sandbox_id)
        if cached and cached[0] == socket:
            return cached[1]
        client = uds_client(socket, timeout=STREAM_TIMEOUT, limits=httpx.Limits(
            max_connections=200, max_keepalive_connections=20, keepalive_expiry=60))
        self._clients[sandbox_id] = (socket, client)
        return client

    def __contains__(self, sandbox_id: str) -> bool:
        return sandbox_id in self._clients

    async def drop(self, sandbox_id: str) -> None:
        """Close the sandbox's clients, its per-port ones (keyed `<id>:<port>`) included."""
        for key in [k for k in self._clients if k == sandbox_id or k.startswith(sandbox_id + ":")]:
            await self._clients.pop(key)[1].aclose()

    async def close(self) -> None:
        for sid in list(self._clients):
            await self.drop(sid)
