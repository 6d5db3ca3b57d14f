"""An API replica's connections to its nodes: one HTTP client per node URL, carrying the node
credential on every request, over TLS when the node's URL is https:// (verified against
`CORRAL_NODE_CA`, else the system's trust store). Connect timeouts are short, so a dead node is
a quick, clear error; reads have none, because commands and watches stream for as long as they
run."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from corral.cluster.credential import HEADER

CONNECT_TIMEOUT_S = 3.0


class NodeLinks:
    def __init__(self, secret: str, ca: Path | None = None) -> None:
        self.secret = secret
        self.ca = ca
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._ssl: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        return self._ssl

    def client(self, base_url: str) -> httpx.AsyncClient:
        client = self._clients.get(base_url)
        if client is None:
            client = httpx.AsyncClient(
                base_url=base_url.rstrip("/"),
                headers={HEADER.decode(): self.secret},
                verify=self.ssl_context() if base_url.startswith("https://") else False,
                timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT_S),
                limits=httpx.Limits(max_connections=2000, max_keepalive_connections=200, keepalive_expiry=60),
            )
            self._clients[base_url] = client
        return client

    def ws_base(self, base_url: str) -> str:
        return "wss://" + base_url[len("https://"):] if base_url.startswith("https://") else \
            "ws://" + base_url[len("http://"):]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
