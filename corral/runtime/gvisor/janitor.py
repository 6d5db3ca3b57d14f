"""What a gVisor sandbox leaves behind when its server is gone, and the janitor that removes it.

A sandbox ends itself at its deadline (envd, its init, exits; the Sentry and the gofer follow;
its mounts live only in the launcher's private mount namespace and its loop device clears
itself), but runsc's record of it (state files in ``--root``, the control socket), its
cgroup directories and its run directory's tmpfs stay until someone removes them; nothing inside the sandbox can. While the
server runs, its teardown does. The tier starts this janitor once (``python -I -m
corral.runtime.gvisor.janitor '<json>'``, its own session, outside every sandbox cgroup) with a
pipe as its standard input that only the server holds: while the server lives the janitor
blocks on that pipe. At end-of-file (the server stopped, or was killed) it takes the sandboxes
that have cgroups, and removes each one's cgroups and runsc record once its last process
has exited; when none is left it removes the group's empty parents and exits.

A restarted server re-adopts the running sandboxes meanwhile (removal is idempotent, and a
sandbox is cleaned only after it ended); paused-to-disk sandboxes have no cgroup and are not
watched, so their restore on the new server is never mistaken for a leftover.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from corral.runtime.gvisor.cgroups import SandboxCgroups
from corral.runtime.gvisor import rundir, runsc

POLL_S = 0.25


def clean_up(cgroups: SandboxCgroups, root: Path, sandbox_id: str) -> None:
    for f in runsc.record(root, sandbox_id):
        try:
            f.unlink(missing_ok=True)
        except OSError:
            pass
    try:
        cgroups.destroy(sandbox_id)
    except Exception:  # noqa: BLE001 - a janitor keeps going; a restarted server reconciles
        pass
    rundir.unmount(sandbox_id)   # its run directory's tmpfs (corral.runtime.gvisor.rundir)


def run(cgroups: SandboxCgroups, root: Path) -> None:
    """After the server is gone: clean each sandbox that was running once it has ended."""
    # Every sandbox with a cgroup now: running, or ended just before (paused-to-disk ones have
    # none, so a restore by a restarted server is never touched).
    watched = set(cgroups.list_ids())
    while watched:
        for sid in sorted(watched):
            if not _has_processes(cgroups, sid):
                clean_up(cgroups, root, sid)
                watched.discard(sid)
        time.sleep(POLL_S)
    cgroups.remove_group_if_empty()


def _has_processes(cgroups: SandboxCgroups, sandbox_id: str) -> bool:
    try:
        return bool(cgroups.pids(sandbox_id))
    except OSError:
        return False


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    try:
        while os.read(0, 4096):     # the server never writes; EOF is its end
            pass
    except OSError:
        pass
    os.dup2(null, 0)
    run(SandboxCgroups(spec["group"]), Path(spec["root"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
