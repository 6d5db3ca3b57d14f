"""Development entry: `python -m corral.envd --uds PATH --config FILE.json [--etc-root DIR]`.

In production the runtime calls `server.serve_handoff()` (its payload, named in
`corral.wire.constants.ENVD_PAYLOAD`) in a forked, pivoted child; this entry binds the socket
itself so the daemon can be run and tested on a plain host.
"""

from __future__ import annotations

import argparse
import os
import socket

from corral.guest import users
from corral.wire.handoff import EnvdConfig
from corral.envd.server import preload, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m corral.envd")
    parser.add_argument("--uds", required=True, help="unix socket path to listen on")
    parser.add_argument("--config", required=True, help="hand-off file (corral.wire.handoff.EnvdConfig as JSON)")
    parser.add_argument("--etc-root", default=None, help="directory holding passwd/group (default /etc)")
    args = parser.parse_args(argv)
    with open(args.config, "rb") as fh:
        config = EnvdConfig.from_bytes(fh.read())
    if args.etc_root:
        users.ETC_ROOT = args.etc_root
    preload()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(args.uds):
        os.unlink(args.uds)
    sock.bind(args.uds)
    os.chmod(args.uds, 0o600)
    sock.listen(128)
    try:
        serve(sock, config)
    finally:
        sock.close()
        try:
            os.unlink(args.uds)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main()
