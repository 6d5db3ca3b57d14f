"""User processes get less than the daemon: their own cgroup, the OOM killer's first choice,
and process slots taken back from the leftovers of ended commands.

The tier puts the daemon (pid 1) in the sandbox's cgroup and, with the sandbox's limits, creates
a child cgroup for user processes whose memory and pids limits sit below the sandbox's; it hands
the daemon descriptors of that child's ``cgroup.procs`` (`corral.wire.constants`). Every process
the daemon starts moves itself there before it drops to its user (`enter_user_cgroup`), so a
memory bomb or a fork bomb hits the child's limit while the daemon keeps room to allocate and
fork. The daemon's oom_score_adj is -999 (set by the tier while it still was host root); a user
process resets its own to 0.

A fork bomb whose command has ended leaves survivors that fill the user cgroup's process slots:
the next command could start but not fork. Before a command starts, `reclaim_process_slots`
stops and kills processes that belong to no running command (their ancestry reaches the daemon
without meeting a running command's leader) when the user's slots are nearly all used, like an
OOM killer for process slots: nothing of a running command is touched.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from corral.wire.constants import USER_CGROUP_FDS_ENV, USER_NPROC_ENV, USER_PIDS_MAX_ENV

# Slots kept free for the next command (its shell, a pipeline, a subshell).
SPARE_SLOTS = 16


def user_cgroup_fds(environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[int, ...]:
    text = environ.get(USER_CGROUP_FDS_ENV, "")
    return tuple(int(x) for x in text.split(",") if x.strip().isdigit())


def user_pids_max(environ: dict[str, str] | os._Environ[str] = os.environ) -> int | None:
    text = environ.get(USER_PIDS_MAX_ENV, "")
    return int(text) if text.isdigit() else None


def user_nproc(environ: dict[str, str] | os._Environ[str] = os.environ) -> int | None:
    text = environ.get(USER_NPROC_ENV, "")
    return int(text) if text.isdigit() else None


def enter_user_cgroup(fds: Iterable[int], nproc: int | None = None) -> None:
    """In a freshly forked child, before it becomes its user: join the user cgroup ("0" is the
    writing task), take the process-count limit where no pids cgroup gives one (``nproc``:
    RLIMIT_NPROC, counted per user by the kernel), and give up the daemon's OOM protection.
    Raises OSError if the move fails, so nothing runs with the daemon's headroom."""
    for fd in fds:
        os.write(fd, b"0")
    if nproc is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("0")
    except OSError:
        pass  # a sandbox without a writable /proc: the cgroup limit still holds


def drop_to(uid: int, gid: int, groups: Iterable[int]) -> None:
    """Become ``uid``/``gid`` (what Popen's user=/group=/extra_groups= do, done here so the
    cgroup move and the oom_score_adj write happen before, while /proc/self is still ours)."""
    if os.geteuid() == 0:
        os.setgroups(list(groups))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, task count) for every process of this pid namespace but pid 1."""
    out: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or name == "1":
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            out[int(name)] = (int(fields[1]), int(fields[17]))  # ppid, num_threads
        except (OSError, ValueError, IndexError):
            continue   # gone meanwhile
    return out


def _orphans(procs: dict[int, tuple[int, int]], live: set[int]) -> set[int]:
    owner: dict[int, bool] = {}

    def owned(pid: int) -> bool:
        chain = []
        while pid in procs and pid not in owner and pid not in live:
            chain.append(pid)
            pid = procs[pid][0]
        result = pid in live or owner.get(pid, False)
        for p in chain:
            owner[p] = result
        return result

    return {pid for pid in procs if not owned(pid)}


def reclaim_process_slots(live: set[int], pids_max: int | None, spare: int = SPARE_SLOTS,
                          rounds: int = 50) -> int:
    """Kill processes of ended commands if fewer than ``spare`` user slots are left; returns how
    many were killed. ``live`` are the pids of running commands' leaders (the reaper's watched
    pids). Only as pid 1 of a sandbox, where every process in sight is the sandbox's own."""
    if pids_max is None or os.getpid() != 1:
        return 0
    procs = _processes()
    if sum(tasks for _, tasks in procs.values()) < pids_max - spare:
        return 0
    stopped: set[int] = set()
    for _ in range(rounds):   # stop first, so none can fork while the rest are found
        fresh = _orphans(_processes(), live) - stopped
        if not fresh:
            break
        for pid in fresh:
            _signal(pid, signal.SIGSTOP)
        stopped |= fresh
    for pid in stopped:
        _signal(pid, signal.SIGKILL)
    _wait_gone(stopped)
    return len(stopped)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pids: set[int], timeout: float = 5.0) -> None:
    """Reap the killed orphans (pid 1 inherits them; none is a watched command, so taking their
    status races no one) so their slots are free before the next command forks."""
    deadline = time.monotonic() + timeout
    left = set(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                # Not (yet) our child: gone already if /proc has no entry for it.
                if not os.path.exists(f"/proc/{pid}"):
                    left.discard(pid)
                continue
            if done:
                left.discard(pid)
        if left:
            time.sleep(0.005)


class MemoryWatchdog(threading.Thread):
    """The user cgroup's memory limit where the kernel counts a cgroup's memory but does not
    enforce it (gVisor's Sentry, in the releases Debian ships): once the user cgroup is over its
    limit, SIGKILL its largest process, as the kernel's OOM killer would. The host cgroup keeps
    the Sentry's own, higher limit as the backstop (corral.runtime.gvisor)."""

    def __init__(self, cgroup: Path, limit_bytes: int, interval: float = 0.02) -> None:
        super().__init__(name="corral-oom", daemon=True)
        self.cgroup = cgroup
        self.limit = limit_bytes
        self.interval = interval
        self.kills = 0

    def usage(self) -> int:
        return int((self.cgroup / "memory.usage_in_bytes").read_text())

    def largest(self) -> int | None:
        best, best_rss = None, -1
        for text in (self.cgroup / "cgroup.procs").read_text().split():
            try:
                with open(f"/proc/{text}/statm") as f:
                    rss = int(f.read().split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if rss > best_rss:
                best, best_rss = int(text), rss
        return best

    def check(self) -> bool:
        """One look; True if it killed a process."""
        if self.usage() <= self.limit:
            return False
        pid = self.largest()
        if pid is None or pid == os.getpid():
            return False
        _signal(pid, signal.SIGKILL)
        self.kills += 1
        return True

    def run(self) -> None:
        while True:
            try:
                killed = self.check()
            except (OSError, ValueError):
                killed = False
            # After a kill, give the victim's memory time to go before looking again.
            time.sleep(0.2 if killed else self.interval)
