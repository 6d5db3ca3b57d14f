"""HTTP over a sandbox's unix socket.

httpx builds a verifying SSL context for every transport it creates, which means reading the CA
bundle: about 25 ms, paid on the first request to every new sandbox. Nothing on a unix socket
speaks TLS, so these transports skip it.
"""

from __future__ import annotations

from pathlib import Path

import httpx

STREAM_TIMEOUT = httpx.Timeout(None, connect=10.0)


def uds_client(socket: Path | str, *, timeout: httpx.Timeout | float = 10.0,
               limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(uds=str(socket), retries=0, verify=False,
                                         limits=limits or httpx.Limits())
    return httpx.AsyncClient(transport=transport, base_url="http://sandbox", timeout=timeout)
