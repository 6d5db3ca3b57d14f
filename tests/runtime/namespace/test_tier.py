"""NamespaceTier lifecycle against the real kernel (root)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corral.runtime.base import Limits, SandboxSpec, TierError
from tests.runtime.namespace.sandboxes import (
    SandboxFactory, host_leftovers, require_environment, sandbox_factory,
)

pytestmark = pytest.mark.root


async def test_create_runs_commands_and_destroy_leaves_nothing(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    out = await box.run(["hostname"])
    assert out == {"rc": 0, "stdout": box.id + "\n", "stderr": ""}
    assert (await box.run(["cat", "/etc/hostname"]))["stdout"] == box.id + "\n"
    assert box.id in (await box.run(["cat", "/etc/hosts"]))["stdout"]
    assert box.tier.is_alive(box.id)
    await box.tier.destroy(box.id, box.spec.workdir)
    assert host_leftovers(box) == []
    await box.tier.destroy(box.id, box.spec.workdir)  # twice is fine


async def test_config_file_is_consumed_and_socket_is_private(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create(access_token="tok-123", env_vars={"FOO": "bar"})
    workdir = Path(box.spec.workdir)
    assert not (workdir / "envd-config.json").exists()
    assert (workdir.stat().st_mode & 0o777) == 0o700
    assert (box.handle.envd_socket.stat().st_mode & 0o077) == 0
    env = await box.run(["cat", "/proc/1/environ"])
    assert "FOO=bar" in env["stdout"]
    assert "tok-123" not in env["stdout"]


async def test_usage_reports_cgroup_and_disk(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create(limits=Limits(cpu_count=1, memory_mb=256, disk_mb=64, pids_max=64))
    await box.sh("head -c 8000000 /dev/urandom > /root/blob && sync")
    usage = await box.tier.usage(box.id, box.spec.workdir)
    assert usage.memory_limit_bytes == 256 * 1024 * 1024
    assert usage.cpu_count == 1
    assert usage.cpu_usage_usec > 0
    assert 56 * 1024 * 1024 <= usage.disk_total_bytes <= 64 * 1024 * 1024
    assert usage.disk_used_bytes >= 8_000_000


async def test_freeze_and_thaw(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    await box.tier.freeze(box.id)
    state = (box.tier.cgroups.root / "freezer" / box.tier.cgroup_group / box.id / "freezer.state")
    if box.tier.cgroups.version == 1:
        assert state.read_text().strip() == "FROZEN"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(box.run(["true"]), 0.5)
    await box.tier.thaw(box.id)
    assert (await box.run(["true"]))["rc"] == 0


async def test_exit_of_init_is_reported(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    os.kill(box.handle.init_pid, signal.SIGKILL)
    for _ in range(500):
        if not box.tier.is_alive(box.id):
            break
        await asyncio.sleep(0.01)
    assert not box.tier.is_alive(box.id)
    status = box.tier.exit_status(box.id)
    assert status is not None and os.WIFSIGNALED(status)


async def test_duplicate_id_and_bad_specs_are_refused(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    dup = SandboxSpec(box.id, "base", sandboxes.rootfs, sandboxes.base / "other", 9_000_000)
    with pytest.raises(TierError, match="already exists"):
        await sandboxes.tier.create(dup)
    assert (await box.run(["true"]))["rc"] == 0  # the refused create did not hurt the original
    for bad in (
        SandboxSpec("../etc", "base", sandboxes.rootfs, sandboxes.base / "x", 9_000_000),
        SandboxSpec("okid", "base", sandboxes.rootfs, sandboxes.base / "x", 0),
        SandboxSpec("okid", "base", sandboxes.rootfs, sandboxes.base / "x", 1000),
        SandboxSpec("okid", "base", sandboxes.rootfs, Path("relative"), 9_000_000),
        SandboxSpec("okid", "base", Path("/nonexistent-rootfs"), sandboxes.base / "x", 9_000_000),
    ):
        with pytest.raises(TierError):
            await sandboxes.tier.create(bad)
    assert await sandboxes.tier.leftovers() == [box.id]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A base short enough for a plain socket path: the test below uses a box after its tier
    closed, and a socket path too long for sun_path is reached through an O_PATH fd that the
    tier closes (that case has its own test below). pytest-xdist's tmp_path (.../popen-gwN/...)
    is long enough to cross the limit."""
    path = Path(tempfile.mkdtemp(prefix="crt", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_sandboxes_survive_spawner_death_and_are_adopted(short_tmp: Path) -> None:
    tmp_path = short_tmp
    async with sandbox_factory(tmp_path) as sandboxes:
        box = await sandboxes.create()
        tier = sandboxes.tier
        meminfo = "head -1 /proc/meminfo"
        # The sandbox's own size, through the server's lxcfs, before and after the "restart".
        limit_kb = box.spec.limits.memory_mb * 1024
        assert (await box.sh(meminfo))["stdout"].split()[1] == str(limit_kb)
        assert tier._spawner.proc is not None
        tier._spawner.proc.kill()
        await tier.close()
        assert (await box.run(["true"]))["rc"] == 0
        assert (await box.sh(meminfo))["stdout"].split()[1] == str(limit_kb)
        # a "restarted server": a fresh tier finds and re-adopts the sandbox
        from corral.runtime.namespace import NamespaceTier

        fresh = NamespaceTier(state_dir=tier.state_dir, cgroup_group=tier.cgroup_group,
                              init_argv=tier.init_argv)
        await fresh.start()
        try:
            assert box.id in await fresh.leftovers()
            handle = await fresh.adopt(box.id, box.spec.workdir)
            assert handle is not None and handle.init_pid == box.handle.init_pid
            assert await fresh.adopt("nosuchsandbox", tmp_path / "none") is None
            assert fresh.is_alive(box.id)
            assert (await box.sh(meminfo))["stdout"].split()[1] == str(limit_kb)
            os.kill(handle.init_pid, signal.SIGKILL)
            for _ in range(500):
                if not fresh.is_alive(box.id):
                    break
                await asyncio.sleep(0.01)
            assert not fresh.is_alive(box.id)
            await fresh.destroy(box.id, box.spec.workdir)
            assert host_leftovers(box) == []
        finally:
            await fresh.close()
        await tier.start()  # so the factory can close it cleanly


async def test_envd_mode_serves_http(tmp_path: Path) -> None:
    try:
        from corral.envd import server  # noqa: F401
    except ImportError:
        pytest.skip("corral.envd.server not present")
    async with sandbox_factory(tmp_path, init_argv=[]) as sandboxes:
        box = await sandboxes.create(access_token=None)
        transport = httpx.AsyncHTTPTransport(uds=str(box.handle.envd_socket))
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            resp = await client.get("/health")
        assert resp.status_code in (200, 204)
        status = (Path(f"/proc/{box.handle.init_pid}/status")).read_text()
        assert "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status


def test_requires_environment_skip_message() -> None:
    require_environment()  # skips (with a message) instead of failing where unsupported


async def test_a_data_dir_too_deep_for_a_socket_path_still_works(sandboxes: SandboxFactory) -> None:
    deep = sandboxes.base / ("d" * 80) / ("e" * 80)
    deep.mkdir(parents=True)
    sandboxes.base = deep
    box = await sandboxes.create()
    assert len(os.fsencode(Path(box.spec.workdir) / "envd.sock")) > 108
    assert str(box.handle.envd_socket).startswith("/proc/self/fd/")
    assert (await box.run(["hostname"]))["stdout"] == box.id + "\n"
    adopted = await box.tier.adopt(box.id, box.spec.workdir)
    assert adopted is not None and adopted.init_pid == box.handle.init_pid
    await box.tier.destroy(box.id, box.spec.workdir)
    assert host_leftovers(box) == []
    assert box.id not in box.tier._dirfds
