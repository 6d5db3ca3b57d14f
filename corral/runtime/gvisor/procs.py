"""Host-side process plumbing of the gVisor tier: how the launcher is started, the sandbox's pid
(runsc's ``--pid-file``), liveness checks, the start-up log's tail, the network hand-shake pipe."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from corral.runtime.gvisor import layout as L
from corral.runtime.gvisor.runsc import CLEAN_ENV

PID_FILE = "sandbox.pid"   # runsc's --pid-file: the sandbox process's host pid
SPARE_ARG = "--wait"       # a launcher started ahead of time reads its spec from stdin (frame_spec)


def frame_spec(spec: dict[str, object]) -> bytes:
    """A spec for a waiting launcher: 8-byte big-endian length, then the JSON. The payload's
    hand-off bytes follow on the same pipe, for the sandbox's init to read."""
    raw = json.dumps(spec).encode()
    return len(raw).to_bytes(8, "big") + raw


def launcher_argv() -> list[str]:
    """How the launcher starts: the server's interpreter without ``site`` (-S: no site-packages
    scan, no .pth files) and with corral's own tree first on sys.path; it imports only the
    standard library and corral's mount helpers. Every millisecond here is on every gVisor
    create and resume."""
    root = str(Path(__file__).resolve().parents[3])
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from corral.runtime.gvisor.launcher import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-I", "-S", "-c", code, root]


def read_pid(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def point_bundle_at(lay: L.Layout, netns_path: str) -> None:
    config = json.loads(lay.config.read_text())
    for ns in config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = netns_path
    tmp = lay.config.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=1))
    os.replace(tmp, lay.config)


def read_line(fd: int) -> str:
    out = b""
    while not out.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def launcher_env() -> dict[str, str]:
    return dict(CLEAN_ENV)


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "no log"
    return " | ".join(ln for ln in text.splitlines()[-lines:] if ln.strip()) or "no log"
