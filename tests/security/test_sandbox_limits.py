"""Resource exhaustion from inside a sandbox: memory, processes, disk and CPU are capped by the
sandbox's own limits, the host stays healthy, and the sandbox is usable again afterwards.

Destructive tests get a fresh sandbox each, so one broken sandbox cannot fail another test.
Assertions compare amounts (bytes, tasks, CPU time per wall time), never durations.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from e2b import Sandbox
from e2b.exceptions import SandboxException

from corral.runtime.gvisor.cgroups import SENTRY_HEADROOM_BYTES
from tests.tiers import skip_on
from tests.security.conftest import cgroup_file, run, run_py

pytestmark = [pytest.mark.e2e, pytest.mark.root]

MiB = 1024 * 1024


@pytest.fixture
def fresh(sdk) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(timeout=600, metadata={"suite": "limits"})
    yield sandbox
    sandbox.kill()


def _host_is_fine() -> None:
    """The host can still fork and exec."""
    assert subprocess.run(["true"], check=False).returncode == 0


MEMORY_BOMB = r'''
import sys
hold = []
for mb in range(1, 4097):
    hold.append(b"x" * (1024 * 1024))  # touched memory, not just reserved
    if mb % 16 == 0:
        print(mb, flush=True)
print("survived", flush=True)
'''


def test_memory_bomb_is_killed_at_the_limit(fresh: Sandbox, sdk) -> None:  # type: ignore[no-untyped-def]
    limit_mb = fresh.get_info().memory_mb
    limit_file = cgroup_file(fresh.sandbox_id, "memory/memory.limit_in_bytes", "memory.max")
    assert limit_file is not None, "no memory cgroup for the sandbox on the host"
    # gVisor: the host cgroup also holds the Sentry, so it gets a fixed headroom above the size;
    # the size itself is enforced inside (corral.runtime.gvisor.guest).
    sentry = SENTRY_HEADROOM_BYTES if sdk.isolation == "gvisor" else 0
    assert int(limit_file.read_text()) == limit_mb * MiB + sentry
    out = run_py(fresh, MEMORY_BOMB, user="user", timeout=300)
    assert out.exit_code != 0
    assert "survived" not in out.stdout
    reached = max((int(x) for x in out.stdout.split()), default=0)
    assert reached <= limit_mb + 16, f"allocated {reached} MB past a {limit_mb} MB limit"
    # Afterwards the sandbox is fine, and its memory is back.
    assert fresh.commands.run("echo alive").stdout == "alive\n"
    fresh.files.write("/tmp/after-oom.txt", "ok")
    assert fresh.files.read("/tmp/after-oom.txt") == "ok"
    _host_is_fine()


def test_memory_bomb_as_root_is_killed_too(fresh: Sandbox, sdk) -> None:  # type: ignore[no-untyped-def]
    limit_mb = fresh.get_info().memory_mb
    out = run_py(fresh, MEMORY_BOMB, user="root", timeout=300)
    assert out.exit_code != 0
    assert max((int(x) for x in out.stdout.split()), default=0) <= limit_mb + 16
    assert fresh.commands.run("echo alive", user="root").stdout == "alive\n"


FORK_UNTIL_REFUSED = r'''
import errno, os, signal, time
children = []
err = None
for i in range(20000):
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)
print(len(children), err)
'''


def test_fork_bomb_is_stopped_by_the_pids_limit(fresh: Sandbox, sdk) -> None:  # type: ignore[no-untyped-def]
    skip_on(sdk.isolation, "gvisor", reason="gVisor's tasks are not host processes: the host pids "
            "limit counts the Sentry's threads (~6 per sandbox process), so it is sized far above "
            "the sandbox's own cap, which is RLIMIT_NPROC inside (the Sentry has no pids cgroup); "
            "tests/security/test_sandbox_abuse.py checks the bomb is contained there")
    pids_max_file = cgroup_file(fresh.sandbox_id, "pids/pids.max", "pids.max")
    assert pids_max_file is not None, "no pids cgroup for the sandbox on the host"
    pids_max = int(pids_max_file.read_text())
    assert 0 < pids_max <= 4096
    out = run_py(fresh, FORK_UNTIL_REFUSED, user="user", timeout=300)
    assert out.exit_code == 0, out.stderr
    made, err = out.stdout.split()
    assert err == "EAGAIN"
    assert int(made) < pids_max
    _host_is_fine()
    assert fresh.commands.run("echo alive").stdout == "alive\n"


def test_shell_fork_bomb_is_contained(fresh: Sandbox, sdk) -> None:  # type: ignore[no-untyped-def]
    """The classic bomb, made to stop itself once a file exists; the file is written through
    the files API, which needs no new process inside the sandbox."""
    skip_on(sdk.isolation, "gvisor", reason="gVisor's tasks are not host processes: the host pids "
            "limit counts the Sentry's threads (~6 per sandbox process), so it is sized far above "
            "the sandbox's own cap, which is RLIMIT_NPROC inside (the Sentry has no pids cgroup); "
            "tests/security/test_sandbox_abuse.py checks the bomb is contained there")
    pids_max = int(cgroup_file(fresh.sandbox_id, "pids/pids.max", "pids.max").read_text())  # type: ignore[union-attr]
    current = cgroup_file(fresh.sandbox_id, "pids/pids.current", "pids.current")
    assert current is not None
    fresh.commands.run("b(){ [ -e /tmp/stop-bomb ] && return; b | b & }; b", background=True, timeout=0)
    peak = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and peak < pids_max * 0.9:
        peak = max(peak, int(current.read_text()))
        _host_is_fine()  # the host can still fork while the sandbox is saturated
        time.sleep(0.1)
    assert peak <= pids_max
    assert peak >= pids_max // 2, f"the bomb never got going (peak {peak} of {pids_max} tasks)"
    fresh.files.write("/tmp/stop-bomb", "stop")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if fresh.commands.run("echo alive", timeout=10).stdout == "alive\n":
                break
        except SandboxException:
            time.sleep(0.5)
    assert fresh.commands.run("echo alive").stdout == "alive\n"
    _host_is_fine()


def test_disk_fill_stops_at_the_quota(fresh: Sandbox) -> None:
    host_free_before = _host_free_bytes()
    out = run(fresh, "dd if=/dev/zero of=/home/user/fill bs=1M status=none; echo rc=$?; wc -c < /home/user/fill",
              user="user", timeout=600)
    lines = out.stdout.split()
    assert "rc=0" not in lines, "dd never hit the end of the disk"
    written = int(lines[-1])
    assert 1024 * MiB <= written <= 2048 * MiB, written
    assert "No space left on device" in out.stderr
    # While full, an upload fails cleanly instead of hanging or being truncated silently.
    with pytest.raises(SandboxException):
        fresh.files.write("/home/user/more.bin", b"y" * (64 * MiB))
    # The host's disk paid at most the sandbox's quota.
    assert host_free_before - _host_free_bytes() <= 2200 * MiB
    # Free the space; the sandbox works normally again.
    run(fresh, "rm -f /home/user/fill /home/user/more.bin")
    fresh.files.write("/home/user/after.txt", "room again")
    assert fresh.files.read("/home/user/after.txt") == "room again"
    assert fresh.commands.run("dd if=/dev/zero of=/home/user/small bs=1M count=50 status=none && echo ok").stdout == "ok\n"


def test_disk_fill_as_root_stops_at_the_quota(fresh: Sandbox) -> None:
    out = run(fresh, "dd if=/dev/zero of=/root/fill bs=1M status=none; wc -c < /root/fill", user="root", timeout=600)
    written = int(out.stdout.split()[-1])
    assert written <= 2048 * MiB, written
    run(fresh, "rm -f /root/fill", user="root")
    assert fresh.commands.run("echo alive").stdout == "alive\n"


def _host_free_bytes() -> int:
    st = os.statvfs("/")
    return st.f_bavail * st.f_frsize


def _cgroup_cpu_usec(sandbox_id: str) -> int:
    v1 = cgroup_file(sandbox_id, "cpuacct/cpuacct.usage", "cpu.stat")
    assert v1 is not None, "no cpu accounting cgroup for the sandbox on the host"
    text = v1.read_text()
    if v1.name == "cpuacct.usage":
        return int(text) // 1000
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec")))


def test_runaway_cpu_is_bounded_by_cpu_count(fresh: Sandbox) -> None:
    info = fresh.get_info()
    quota = cgroup_file(fresh.sandbox_id, "cpu/cpu.cfs_quota_us", "cpu.max")
    assert quota is not None
    if quota.name == "cpu.max":
        q, period = quota.read_text().split()
        assert int(q) == info.cpu_count * int(period)
    else:
        period = (quota.parent / "cpu.cfs_period_us").read_text()
        assert int(quota.read_text()) == info.cpu_count * int(period)

    handles = [fresh.commands.run("while :; do :; done", background=True, timeout=0) for _ in range(info.cpu_count + 1)]
    try:
        cpu0, wall0 = _cgroup_cpu_usec(fresh.sandbox_id), time.monotonic()
        time.sleep(3)
        cpu1, wall1 = _cgroup_cpu_usec(fresh.sandbox_id), time.monotonic()
        metrics = fresh.get_metrics()
    finally:
        for h in handles:
            h.kill()
    used = (cpu1 - cpu0) / 1e6
    elapsed = wall1 - wall0
    assert used > 0.5, "the busy loops did not run"
    # A ratio of two measurements, not a timing: CPU seconds per wall second <= CPUs allowed.
    assert used / elapsed <= info.cpu_count * 1.1 + 0.1
    assert metrics, "get_metrics returned nothing"
    last = metrics[-1]
    assert last.cpu_count == info.cpu_count
    assert 0 <= last.cpu_used_pct <= 100
    assert fresh.commands.run("echo alive").stdout == "alive\n"
    _host_is_fine()
