"""Which sandbox and port an HTTP request is for.

The SDK names the target two ways: `E2b-Sandbox-Id` / `E2b-Sandbox-Port` headers (always sent; the
only way with `E2B_SANDBOX_URL`), and the Host `{port}-{sandboxId}.{domain}` (with `E2B_DOMAIN`).
A request with neither is for the REST control plane.
"""

from __future__ import annotations

import re

from corral.wire import ENVD_PORT, is_sandbox_id

_HOST_RE = re.compile(r"^(?P<port>\d{1,5})-(?P<id>[a-z0-9]+)\.")


def sandbox_target(headers: dict[bytes, bytes]) -> tuple[str, int] | None:
    sid = headers.get(b"e2b-sandbox-id")
    if sid is not None:
        port_raw = headers.get(b"e2b-sandbox-port", str(ENVD_PORT).encode())
        try:
            port = int(port_raw)
        except ValueError:
            port = -1
        return sid.decode("latin-1"), port
    host = headers.get(b"host", b"").decode("latin-1").lower()
    m = _HOST_RE.match(host)
    if m and is_sandbox_id(m["id"]):
        return m["id"], int(m["port"])
    return None
