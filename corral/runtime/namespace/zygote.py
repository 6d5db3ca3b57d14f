"""The spawner: a long-lived, single-threaded process that forks sandboxes.

Started by the tier with a clean environment (so no server secret is ever in its memory, and
therefore in no sandbox's memory either), it imports the payload the tier names (argv: a JSON
`corral.runtime.base.Payload`) and runs its preloads once, and compiles the seccomp filter once. Creating a sandbox is then a fork plus namespace setup, with
no exec and no interpreter start. It is a child subreaper: sandbox inits are re-parented to it,
and it reports their exits to the tier. If the tier goes away (EOF on the control socket or
the parent dies) it exits; the sandboxes keep running until their own deadlines (or until a
restarted server re-adopts them), and a janitor it forks first removes their cgroups as they
end (`janitor.py`).

Protocol: SOCK_SEQPACKET, one JSON object per message.
  tier -> spawner: {"op": "spawn", ...SpawnRequest}  |  {"op": "ping", "req": n}
  spawner -> tier: {"req": n, "ok": true, "pid": p}  |  {"req": n, "ok": false, "error": "..."}
                   {"event": "exit", "pid": p, "status": wait_status}
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
from typing import Any

from corral.runtime.namespace import janitor, launch, seccomp
from corral.runtime.namespace import syscalls as sc
from corral.runtime.namespace.cgroups import detect
from corral.runtime.namespace.request import RequestError, SpawnRequest
from corral.wire.entry_points import resolve

MAX_MESSAGE = 1 << 16


def load_payload(spec: dict[str, Any]) -> launch.LoadedPayload | None:
    """Import the payload named by the tier and run its preloads, once, before any fork.

    None when it cannot be imported: every spawn of an in-process payload is then refused, and
    the spawner still serves `init_argv` sandboxes."""
    try:
        for ref in spec.get("preload", []):
            target = resolve(ref)
            if ":" in ref:
                target()
        serve = resolve(spec["entry_point"])
    except (ImportError, AttributeError, KeyError):
        return None
    return launch.LoadedPayload(serve, str(spec.get("process_name") or "init").encode())


class Spawner:
    def __init__(self, ctl: socket.socket, cgroup_group: str, payload: dict[str, Any]) -> None:
        self.ctl = ctl
        self.cgroups = detect(group=cgroup_group)
        self.seccomp_programs = [seccomp.export_bpf(seccomp.build_denylist),
                                 seccomp.export_bpf(seccomp.build_allowlist)]
        self.payload_name = str(payload.get("entry_point", ""))
        self.payload = load_payload(payload)
        self.lxcfs_root = str(payload.get("lxcfs_root") or "")   # the tier's lxcfs mount, if any
        self.setup_children: dict[int, int] = {}   # setup child pid -> request id
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def send(self, msg: dict[str, Any]) -> None:
        self.ctl.send(json.dumps(msg).encode())

    def handle(self, raw: bytes) -> None:
        try:
            data = json.loads(raw)
            op = data.get("op")
        except (ValueError, AttributeError):
            self.send({"req": -1, "ok": False, "error": "malformed request"})
            return
        req_id = data.get("req", -1)
        if op == "ping":
            self.send({"req": req_id, "ok": True, "pid": os.getpid()})
            return
        if op != "spawn":
            self.send({"req": req_id, "ok": False, "error": f"unknown op {op!r}"})
            return
        try:
            req = SpawnRequest.from_json(data)
        except RequestError as exc:
            self.send({"req": req_id, "ok": False, "error": str(exc)})
            return
        if req.init_argv == [] and self.payload is None:
            self.send({"req": req_id, "ok": False,
                       "error": f"the sandbox payload is not available ({self.payload_name} missing)"})
            return
        pid = os.fork()
        if pid == 0:
            launch.setup_child(req, self.ctl, self.cgroups, self.seccomp_programs, self.payload,
                               self.lxcfs_root)
        self.setup_children[pid] = req_id

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            req_id = self.setup_children.pop(pid, None)
            if req_id is not None:
                if status != 0:  # died before it could answer for itself
                    self.send({"req": req_id, "ok": False,
                               "error": f"setup process died (status {status})"})
                continue
            self.send({"event": "exit", "pid": pid, "status": status})

    def orphaned(self, *_: object) -> None:
        self.tier_gone = True

    def run(self) -> None:
        try:
            self._serve()
        finally:
            janitor.fork_janitor(self.cgroups, self.lxcfs_root)

    def _serve(self) -> None:
        self.tier_gone = False
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self.orphaned)   # our parent died (PDEATHSIG)
        gc.freeze()  # keep the collector from touching (and un-sharing) inherited pages
        self.reap()
        while True:
            try:
                ready, _, _ = select.select([self.ctl, self.wake_r], [], [])
            except InterruptedError:
                continue
            if self.wake_r in ready:
                try:
                    while os.read(self.wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                self.reap()
                if self.tier_gone:
                    return
            if self.ctl in ready:
                try:
                    raw = self.ctl.recv(MAX_MESSAGE)
                except OSError:
                    raw = b""
                if not raw:
                    return
                self.handle(raw)


def main(argv: list[str]) -> int:
    ctl_fd, parent_pid, group = int(argv[0]), int(argv[1]), argv[2]
    payload = json.loads(argv[3]) if len(argv) > 3 else {}
    # SIGTERM, not SIGKILL: on its parent's death the spawner still forks its janitor.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the tier died before we could watch it
        return 1
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    ctl = socket.socket(fileno=ctl_fd)
    spawner = Spawner(ctl, group, payload)
    spawner.send({"event": "ready", "pid": os.getpid(), "cgroup_version": spawner.cgroups.version,
                  "payload": spawner.payload is not None})
    spawner.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
