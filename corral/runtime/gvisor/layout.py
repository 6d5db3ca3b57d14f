"""Where a gVisor sandbox's pieces live, on the host and inside. Derived from the workdir only,
so a restarted server (or a restore after a host reboot) finds them again.

Host side (``<workdir>`` is 0700 and never visible to the sandbox as a whole)::

    bundle/config.json   the OCI bundle runsc runs
    run/                 bind-mounted at /run/corral inside: the only host directory the sandbox
                         can write to, on its own 64 KiB tmpfs (:mod:`corral.runtime.gvisor.rundir`).
                         envd.sock, ports.sock (the server's way in) and ctl.sock
                         (quiesce before a checkpoint) are created there by the sandbox, as host
                         sockets (runsc --host-uds=create); ``resume`` is written by the tier.
    disk.img             the writable layer: sparse ext4 of the sandbox's disk size
    layer/ root/         mount points, used only in the launcher's private mount namespace
    guest.log            stdout/stderr of the in-sandbox init (start-up errors)
    checkpoint/          default checkpoint image directory (full-mode pause)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corral.wire.constants import ENVD_SOCKET, PORTS_SOCKET  # the names the server connects to

# Inside the sandbox.
GUEST_RUN_DIR = "/run/corral"            # host-backed: envd.sock, ports.sock, ctl.sock, resume
GUEST_INNER_DIR = "/run/corral-guest"    # sandbox-internal sockets envd really listens on (0700)
GUEST_CGROUP = "/sys/fs/cgroup"          # the Sentry's own cgroupfs (runsc --cgroupfs), v1 layout
GUEST_PYTHON = "/run/corral-code/python" # the server's Python runtime, read-only
GUEST_SITE = "/run/corral-code/site"     # the server's site-packages (envd's dependencies)
GUEST_SRC = "/run/corral-code/src"       # the corral package, when it is not in site-packages

CTL_SOCKET = "ctl.sock"
RESUME_FILE = "resume"
HOST_SOCKETS = (ENVD_SOCKET, PORTS_SOCKET, CTL_SOCKET)
__all__ = ["ENVD_SOCKET", "PORTS_SOCKET", "CTL_SOCKET", "RESUME_FILE", "HOST_SOCKETS", "Layout"]


@dataclass(frozen=True)
class Layout:
    workdir: Path

    @property
    def bundle(self) -> Path:
        return self.workdir / "bundle"

    @property
    def config(self) -> Path:
        return self.bundle / "config.json"

    @property
    def run(self) -> Path:
        return self.workdir / "run"

    @property
    def disk(self) -> Path:
        return self.workdir / "disk.img"

    @property
    def layer(self) -> Path:
        return self.workdir / "layer"

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def log(self) -> Path:
        return self.workdir / "guest.log"

    @property
    def checkpoint(self) -> Path:
        return self.workdir / "checkpoint"

    def socket(self, name: str) -> Path:
        return self.run / name
