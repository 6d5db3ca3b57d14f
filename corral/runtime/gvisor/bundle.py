"""The OCI bundle of one gVisor sandbox, and how envd's code gets into it.

envd is corral's own Python code. It runs inside the sandbox on the *server's* interpreter and
libraries, mounted read-only: the interpreter's prefix at ``/run/corral-code/python``, the directories
holding corral's dependencies at ``/run/corral-code/site*`` and, for a source checkout, the ``corral``
package directory (only it, not the checkout) at ``/run/corral-code/src/corral``. These are code, not configuration: the
server's data dir, keys and database are never mounted, and the process starts with an empty
environment. So envd does not depend on the template having (a compatible) Python at all.
"""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path
from typing import Any

import corral
from corral.runtime import oci
from corral.runtime.base import Limits, VolumeBind
from corral.runtime.gvisor import layout as L
from corral.runtime.headroom import (
    choose_cpus, cpusets_in_use, format_cpu_list, host_cpus, host_mems, user_limits,
)

# The Sentry's own threads and (ptrace platform) one stub process per sandbox process count
# against the host pids limit; below ~1024 a busy sandbox's Sentry fails instead of the fork.
PIDS_FLOOR = 1024
# Host tasks one sandbox process costs: measured ~6.3 on the ptrace platform (100 sleeping
# processes took 626 host tasks). The sandbox's own process count is capped inside (RLIMIT_NPROC,
# guest.py), so the host limit is sized for that many at this cost and the Sentry never hits it.
HOST_TASKS_PER_PROCESS = 8
# Host memory one sandbox process costs outside the sandbox's own accounting (its stub process,
# page tables, the Sentry's task state): ~5 MB measured on the ptrace platform, where 120 forked
# Python processes took 590 MB of the host cgroup. The process cap inside is sized so that many
# fit in the sandbox's memory: a fork bomb then stops at the cap instead of the host's OOM killer
# taking the Sentry (and the whole sandbox) with it.
HOST_BYTES_PER_PROCESS = 6 * 1024 * 1024


def corral_import_root() -> str:
    """The directory on sys.path that holds the ``corral`` package."""
    return str(Path(corral.__file__).resolve().parent.parent)


def python_mounts() -> tuple[list[oci.Mount], list[str], str]:
    """(read-only binds, guest sys.path entries, guest interpreter path). The launcher binds
    them into the root filesystem (see launcher.assemble)."""
    prefix = Path(sys.base_prefix).resolve()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    mounts = [oci.read_only_bind(str(prefix), L.GUEST_PYTHON)]
    guest_path: list[str] = []
    sites: list[str] = []
    for key in ("purelib", "platlib"):
        p = str(Path(sysconfig.get_paths()[key]).resolve())
        if p not in sites:
            sites.append(p)
    root = corral_import_root()
    if root not in sites:
        # A source checkout: bind the package directory alone, never its parent (the repository
        # holds the default data dir, .data/, with the database of every sandbox's token).
        package = str(Path(corral.__file__).resolve().parent)
        mounts.append(oci.read_only_bind(package, L.GUEST_SRC + "/corral"))
        guest_path.append(L.GUEST_SRC)
    for i, site in enumerate(sites):
        if Path(site).is_relative_to(prefix):  # inside the interpreter's prefix already
            guest_path.append(L.GUEST_PYTHON + "/" + str(Path(site).relative_to(prefix)))
            continue
        dest = L.GUEST_SITE + (str(i) if i else "")
        mounts.append(oci.read_only_bind(site, dest))
        guest_path.append(dest)
    return mounts, guest_path, f"{L.GUEST_PYTHON}/bin/{version}"


def guest_argv(guest_path: list[str], python: str, entry_point: str, *limits: str) -> list[str]:
    """``limits``: the user cgroup's pids cap and memory bytes (argv, not the environment: the
    guest overwrites its argv in place, while /proc/1/environ keeps what it started with)."""
    boot = (f"import sys; sys.path[:0] = {guest_path!r}; "
            "from corral.runtime.gvisor.guest import main; sys.exit(main(*sys.argv[1:]))")
    return [python, "-I", "-c", boot, entry_point, *limits]


def user_process_cap(limits: Limits) -> int:
    """How many processes user code may have inside: the pids split (headroom), and no more than
    the sandbox's memory can carry at the Sentry's cost per process."""
    split = user_limits(limits)
    return max(16, min(split.pids_max, split.memory_bytes // HOST_BYTES_PER_PROCESS))


def volume_mounts(lay: L.Layout, volumes: tuple[VolumeBind, ...]) -> tuple[list[oci.Mount], list[list[str]]]:
    """Volumes as separate OCI bind mounts (so runsc revalidates them: other sandboxes write them
    too), from the directory the launcher mounts each image at (`workdir/volume-<i>`)."""
    mounts, plan = [], []
    for i, v in enumerate(volumes):
        source = str(lay.workdir / f"volume-{i}")
        mounts.append(oci.Mount(v.target, "bind", source, ("rbind", "rw", "nosuid", "nodev")))
        plan.append([str(v.image), source, v.target])
    return mounts, plan


def volumes_of(config: dict[str, Any]) -> list[list[str]]:
    """The launcher's volume mounts ([image, host dir, path inside]) recorded in a rendered bundle."""
    return json.loads(config.get("annotations", {}).get("dev.corral.volumes", "[]"))


def render(sandbox_id: str, lay: L.Layout, cgroups_path: str, limits: Limits, entry_point: str, *,
           errno_via_trace: bool, netns_path: str | None = None,
           volumes: tuple[VolumeBind, ...] = ()) -> dict[str, Any]:
    binds, guest_path, python = python_mounts()
    mounts: list[oci.Mount] = []
    mounts.append(oci.Mount(L.GUEST_RUN_DIR, "bind", str(lay.run),
                            ("rbind", "rw", "nosuid", "nodev", "noexec")))
    # envd's real sockets must live in the Sentry's own memory: a socket bound on a gofer-backed
    # directory would be a host socket (--host-uds=create), which a checkpoint cannot save.
    # The Sentry's own cgroupfs (its cgroups, never the host's) for the user cgroup (guest.py):
    # runsc 20221219 mounts it for --cgroupfs, 20240729 only when the bundle asks for it.
    mounts.append(oci.Mount(L.GUEST_CGROUP, "cgroup", "cgroup", ("nosuid", "nodev", "noexec")))
    mounts.append(oci.Mount(L.GUEST_INNER_DIR, "tmpfs", "tmpfs",
                            ("nosuid", "nodev", "noexec", "mode=700", "size=64k")))
    volume_binds, volume_plan = volume_mounts(lay, volumes)
    mounts.extend(volume_binds)
    split = user_limits(limits)
    # gVisor takes its CPU count from the cpuset (its quota option never reports fewer than 2).
    cpus = format_cpu_list(choose_cpus(host_cpus(), cpusets_in_use(), limits.cpu_count))
    b = oci.Bundle(
        sandbox_id=sandbox_id, root_path=str(lay.root),
        args=guest_argv(guest_path, python, entry_point, str(user_process_cap(limits)), str(split.memory_bytes)),
        limits=limits, mounts=mounts, cgroups_path=cgroups_path, netns_path=netns_path,
        env={"LD_LIBRARY_PATH": f"{L.GUEST_PYTHON}/lib", "PYTHONDONTWRITEBYTECODE": "1"},
        errno_via_trace=errno_via_trace, pids_floor=PIDS_FLOOR + HOST_TASKS_PER_PROCESS * limits.pids_max,
        cpus=cpus, mems=host_mems(),
        annotations={"dev.corral.binds": json.dumps([[m.source, m.destination] for m in binds]),
                     "dev.corral.volumes": json.dumps(volume_plan)},
    )
    return b.render()


def binds_of(config: dict[str, Any]) -> list[list[str]]:
    """The launcher's read-only binds recorded in a rendered bundle."""
    return json.loads(config.get("annotations", {}).get("dev.corral.binds", "[]"))
