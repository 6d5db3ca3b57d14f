"""The ``runsc`` command line, as the gVisor tier uses it.

One :class:`Runsc` per tier: it fixes the state directory (``--root``, under the server's data
dir, so a restarted server finds every sandbox again), the platform and the flags every call
must repeat (runsc reads its configuration from the command line of *each* invocation).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.runtime.base import TierError

# Platforms that run here: KVM needs VT-x/SVM (the dev VM's /dev/kvm is PVM and hangs). ptrace
# first: on this 2-core machine under load it starts, checkpoints and restores faster than
# systrap, whose stubs spin-wait for the Sentry (docs/BENCHMARKS.md, two runs, both orders);
# CORRAL_RUNSC_PLATFORM=systrap chooses systrap.
PREFERRED_PLATFORMS = ("ptrace", "systrap")
# Where `make` installs the pinned runsc (scripts/install-runsc.sh): used before any runsc on PATH.
CORRAL_RUNSC_PATH = "/usr/local/lib/corral/runsc"
CONTROL_SOCKET_DIRS = ("/var/run", "/run", "/tmp")
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG": "C.UTF-8"}


class RunscError(TierError):
    pass


@dataclass(frozen=True)
class RunscInfo:
    path: str
    version: str
    platform: str

    @property
    def release(self) -> str:
        """The release date, e.g. "20221219" from "0.0~20221219.0"."""
        tail = self.version.split("~", 1)[-1]
        return tail.split(".", 1)[0] if tail[:8].isdigit() else "0"

    @property
    def checkpoints_tcp(self) -> bool:
        """Whether a checkpoint can save TCP endpoints that have waiters (a Jupyter kernel's
        ZMQ sockets, any blocked TCP reader). runsc 20221219 refuses ("endpoint still has
        waiters upon save"); 20240729 saves them."""
        return self.release >= "20230601"

    @property
    def checkpoint_flags(self) -> tuple[str, ...]:
        """How images are written: uncompressed (runsc 20221219 always compresses with flate,
        which is most of a checkpoint's and a restore's time; images stay on local disk)."""
        return ("--compression=none",) if self.release >= "20230601" else ()

    @property
    def full_stat_flags(self) -> bool:
        """Whether stat/statx accept AT_NO_AUTOMOUNT (coreutils ls -l, stat, cp -a use it);
        runsc 20221219 answers EINVAL."""
        return self.release >= "20230601"


def find_runsc(explicit: str | None = None) -> str:
    """``explicit``, else ``CORRAL_RUNSC``, else the pinned build corral installs, else PATH's."""
    path = (explicit or os.environ.get("CORRAL_RUNSC")
            or (CORRAL_RUNSC_PATH if os.access(CORRAL_RUNSC_PATH, os.X_OK) else None)
            or shutil.which("runsc", path=CLEAN_ENV["PATH"]))
    if not path or not os.access(path, os.X_OK):
        raise TierError("gVisor's runsc is not installed (make deps, or scripts/install-runsc.sh)")
    return path


def runsc_installed() -> bool:
    try:
        find_runsc()
    except TierError:
        return False
    return True


def probe(path: str) -> RunscInfo:
    """Version and the platform to use (CORRAL_RUNSC_PLATFORM, else PREFERRED_PLATFORMS' first)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                             env=CLEAN_ENV).stdout
        platforms = subprocess.run([path, "help", "platforms"], capture_output=True, text=True,
                                   timeout=10, env=CLEAN_ENV).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TierError(f"cannot run {path}: {exc}") from exc
    version = out.split("\n", 1)[0].removeprefix("runsc version ").strip()
    wanted = os.environ.get("CORRAL_RUNSC_PLATFORM")   # measuring one against another
    if wanted and wanted not in platforms:
        raise TierError(f"CORRAL_RUNSC_PLATFORM={wanted} is not offered by {path} ({', '.join(platforms)})")
    platform = wanted or next((p for p in PREFERRED_PLATFORMS if p in platforms), "ptrace")
    return RunscInfo(path, version, platform)


class Runsc:
    def __init__(self, root: Path, info: RunscInfo, *, extra_flags: tuple[str, ...] = ()) -> None:
        self.root = root
        self.info = info
        self.extra_flags = extra_flags

    def flags(self, *, network: str = "none") -> list[str]:
        return [
            f"--root={self.root}",
            f"--platform={self.info.platform}",
            f"--network={network}",
            # envd's listening sockets are created by the sandbox in a bind-mounted host
            # directory; nothing else in the sandbox can reach a host socket it did not make.
            "--host-uds=create",
            # Apply the bundle's seccomp policy to sandbox processes (off by default).
            "--oci-seccomp",
            # The Sentry's own cgroupfs at /sys/fs/cgroup (its cgroups, never the host's): the guest
            # init puts user processes in a child cgroup there whose pids.max the Sentry enforces.
            "--cgroupfs",
            # nproc / os.cpu_count() follow the bundle's cpuset (not --cpu-num-from-quota, which
            # never reports fewer than 2 CPUs).
            # Writes go to our own layer (an ext4 image with the disk quota), not to runsc's
            # overlay in memory or in a filestore beside the root (newer runsc's default).
            "--overlay2=none",
            *self.extra_flags,
        ]

    def argv(self, *args: str, network: str = "none") -> list[str]:
        return [self.info.path, *self.flags(network=network), *args]

    async def call(self, *args: str, timeout: float = 60, check: bool = True,
                   network: str = "none") -> str:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*args, network=network), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CLEAN_ENV, cwd="/")
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise RunscError(f"runsc {args[0]} timed out after {timeout:.0f}s") from None
        if check and proc.returncode != 0:
            raise RunscError(f"runsc {args[0]} failed: {_first_line(err or out)}")
        return out.decode(errors="replace")

    async def state(self, container_id: str) -> dict[str, Any] | None:
        """runsc's view of a container, or None when it does not know it."""
        proc = await asyncio.create_subprocess_exec(
            *self.argv("state", container_id), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CLEAN_ENV, cwd="/")
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            return None
        try:
            data = json.loads(out)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def list_ids(self) -> list[str]:
        """Container ids with state in ``--root`` (read from the directory: no subprocess)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        ids = set()
        for name in names:
            if name.endswith(".state") and "_sandbox:" in name:
                ids.add(name.split("_sandbox:", 1)[0])
        return sorted(ids)

    def control_sockets(self, container_id: str) -> list[Path]:
        return control_sockets(self.root, container_id)

    def record(self, container_id: str) -> list[Path]:
        """Everything runsc keeps for a container: its state files and its control socket."""
        return record(self.root, container_id)

    def state_files(self, container_id: str) -> list[Path]:
        try:
            return [self.root / n for n in os.listdir(self.root)
                    if n.startswith(f"{container_id}_sandbox:")]
        except FileNotFoundError:
            return []


def _last_line(raw: bytes) -> str:
    lines = [ln for ln in raw.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "no output"


def _first_line(raw: bytes) -> str:
    """runsc puts the reason first and a Go stack trace after it."""
    lines = [ln for ln in raw.decode(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return "no output"
    first = lines[0]
    return (first[:300] + " ... " + first[-300:]) if len(first) > 600 else first


def control_sockets(root: Path, container_id: str) -> list[Path]:
    """A container's control socket(s): runsc binds ``runsc-<id>.sock`` in the first of ``root``,
    /var/run, /run, /tmp where it can (a long root is too long for a socket name), and only
    ``runsc delete`` removes it. A left one makes the next restore of the same id pick the next
    directory, and fail once every one is taken."""
    name = f"runsc-{container_id}.sock"
    return [p for p in (root / name, *(Path(d) / name for d in CONTROL_SOCKET_DIRS)) if p.is_socket()]


def record(root: Path, container_id: str) -> list[Path]:
    try:
        states = [root / n for n in os.listdir(root) if n.startswith(f"{container_id}_sandbox:")]
    except FileNotFoundError:
        states = []
    return states + control_sockets(root, container_id)
