"""The first process of a gVisor sandbox: envd behind the relay.

runsc starts it as the sandbox's init with the server's Python mounted read-only at
``/.corral/python`` and only corral's own code and dependencies on ``sys.path``. Its standard
input is a pipe carrying the hand-off (envd's configuration: the access token, env vars): it is
read once and replaced by /dev/null, so no file ever holds the secret and no host pipe is left
open for a checkpoint to trip over.

The process then binds envd's sandbox-internal sockets (a 0700 directory only the sandbox's root
can enter), starts the relay that owns the host-visible sockets, and serves envd in the main
thread until SIGTERM.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from corral.runtime.gvisor import layout
from corral.runtime.gvisor.relay import Relay

CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME": "/root", "LANG": "C.UTF-8"}


def _listen(path: str) -> socket.socket:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(512)
    return sock


def _read_handoff() -> dict[str, object]:
    raw = b""
    while chunk := os.read(0, 1 << 16):
        raw += chunk
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("hand-off is not a JSON object")
    return data


def main() -> int:
    handoff = _read_handoff()
    os.environ.clear()
    os.environ.update(CLEAN_ENV)  # nothing of the bootstrap (LD_LIBRARY_PATH) reaches children
    from corral.envd.config import EnvdConfig
    from corral.envd.server import serve

    # No preload(): unlike the namespace tier's pivoted envd, this one keeps corral's code and
    # libraries mounted, so modules (the interpreter's Jupyter stack above all) load when first
    # used. Every import costs Sentry file calls; the start-up path imports half as much.
    os.makedirs(layout.GUEST_INNER_DIR, mode=0o700, exist_ok=True)
    os.chmod(layout.GUEST_INNER_DIR, 0o700)
    inner_envd = _listen(os.path.join(layout.GUEST_INNER_DIR, layout.ENVD_SOCKET))
    inner_ports = _listen(os.path.join(layout.GUEST_INNER_DIR, layout.PORTS_SOCKET))
    relay = Relay(layout.GUEST_RUN_DIR,
                  {layout.ENVD_SOCKET: inner_envd.getsockname(),
                   layout.PORTS_SOCKET: inner_ports.getsockname()},
                  layout.CTL_SOCKET, layout.RESUME_FILE)
    relay.start()
    os.chdir("/")
    serve(inner_envd, EnvdConfig(**handoff["envd"]), inner_ports)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
