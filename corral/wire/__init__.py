"""The host↔sandbox wire: what both sides of the seam share, and the host's one envd client.

The bottom layer: it imports nothing from corral but `corral.errors`. The server side
(api, lifecycle, runtime, templates) and the in-sandbox side (envd, interpreter) both build on it.

- `constants`: ports, socket names, server-only paths, the envd version, the sandbox id format.
- `framing`: Connect envelopes and `ConnectError`.
- `signing`: the SDK's `v1_` signature of `/files` URLs (envd checks it; the server routes by it).
- `handoff`: `EnvdConfig`, what the server hands a sandbox's daemon at start, and its bytes.
- `client`: `EnvdClient`, the host side's calls to a sandbox's envd over its unix socket. Import
  it from `corral.wire.client`: this package's top level stays free of httpx, because the
  in-sandbox daemon imports it into every sandbox.
"""

from corral.wire.constants import (
    ENVD_PORT, ENVD_SOCKET, ENVD_VERSION, INIT_PATH, INTERPRETER_PORT, PORTS_SOCKET,
    SANDBOX_ID_RE, SERVER_ONLY_PREFIX, is_sandbox_id,
)
from corral.wire.framing import ConnectError
from corral.wire.handoff import EnvdConfig, HandoffError

__all__ = [
    "ENVD_PORT", "ENVD_SOCKET", "ENVD_VERSION", "INIT_PATH", "INTERPRETER_PORT", "PORTS_SOCKET",
    "SANDBOX_ID_RE", "SERVER_ONLY_PREFIX", "ConnectError", "EnvdConfig", "HandoffError",
    "is_sandbox_id",
]
