"""SandboxManager against a real sandbox service: a corral server in `make test`, and E2B's cloud
when it is configured (same code). The security config is enforced, not decorative."""

from __future__ import annotations

import pytest
from e2b import AsyncSandbox

from corral.mediagateway import (ExecutionResult, Language, ResourceLimitError, SandboxError, SandboxManager,
                                 SandboxSecurityConfig, SandboxStatus, TransferTooLargeError)
from corral.mediagateway.manager import META_CPU, META_MEMORY, create_options
from corral.mediagateway.template_limits import TemplateLimits

from .conftest import running_ids

pytestmark = pytest.mark.e2e
MIB = 1024 * 1024


async def test_round_trip(manager: SandboxManager):
    sbx = await manager.create_sandbox("base", SandboxSecurityConfig())
    assert sbx.status is SandboxStatus.RUNNING and sbx.template == "base" and sbx.id
    assert sbx.cpu_count <= 2 and sbx.memory_mb <= 1024
    await manager.upload_file(sbx.id, "/tmp/in.json", b'{"n": 6}')
    result = await manager.execute_code(sbx.id, "import json\nn = json.load(open('/tmp/in.json'))['n']\n"
                                                "open('/tmp/out.txt', 'w').write(str(n * 7))\nprint('done')")
    assert isinstance(result, ExecutionResult)
    assert (result.exit_code, result.stdout, result.error) == (0, "done\n", None)
    assert await manager.download_file(sbx.id, "/tmp/out.txt") == b"42"
    await manager.terminate(sbx.id)
    assert sbx.id not in await running_ids(manager.settings)
    with pytest.raises(SandboxError, match="not held"):
        await manager.execute_code(sbx.id, "print(1)")


async def test_errors_and_other_languages(manager: SandboxManager):
    sbx = await manager.create_sandbox("base")
    failed = await manager.execute_code(sbx.id, "def f():\n    raise KeyError('title')\nf()")
    assert failed.exit_code == 1 and failed.error == "KeyError: 'title'" and "Traceback" in failed.stderr
    shell = await manager.execute_code(sbx.id, "echo hi from $0; exit 3", Language.BASH)
    assert shell.exit_code == 3 and "hi from" in shell.stdout and shell.error == "exit code 3"
    with pytest.raises(SandboxError, match="does not exist"):
        await manager.download_file(sbx.id, "/output/missing.json")


async def test_infinite_loop_is_stopped_by_timeout_seconds(manager: SandboxManager):
    sbx = await manager.create_sandbox("base", SandboxSecurityConfig(timeout_seconds=3))
    result = await manager.execute_code(sbx.id, "print('spinning', flush=True)\nwhile True:\n    pass\n")
    assert result.timed_out and result.exit_code == -1 and "timeout_seconds=3" in result.error
    assert "spinning" in result.stdout
    ps = await manager.run_command(sbx.id, "ps -eo args")
    assert "mg_" not in ps.stdout  # the program is gone, not only the wait for it


async def test_upload_over_the_cap_moves_no_byte(manager: SandboxManager, monkeypatch):
    sbx = await manager.create_sandbox("base")
    sandbox = manager._live[sbx.id].sandbox
    writes: list[str] = []
    real_write = sandbox.files.write

    async def spy(path, data, *a, **kw):
        writes.append(path)
        return await real_write(path, data, *a, **kw)

    monkeypatch.setattr(sandbox.files, "write", spy)
    with pytest.raises(TransferTooLargeError) as err:
        await manager.upload_file(sbx.id, "/tmp/big.bin", b"x" * (11 * MIB))
    assert err.value.size == 11 * MIB and err.value.limit == 10 * MIB and err.value.status == 413
    assert writes == []  # no request (so no body) was sent
    assert not await manager.exists(sbx.id, "/tmp/big.bin")
    await manager.upload_file(sbx.id, "/tmp/ok.bin", b"x" * MIB)  # under the cap it goes through
    assert writes == ["/tmp/ok.bin"]


async def test_download_over_the_cap_is_refused_after_a_stat(manager: SandboxManager, monkeypatch):
    sbx = await manager.create_sandbox("base")
    await manager.run_command(sbx.id, "truncate -s 60M /tmp/big.bin")
    sandbox = manager._live[sbx.id].sandbox
    reads: list[str] = []
    monkeypatch.setattr(sandbox.files, "read", lambda path, *a, **kw: reads.append(path))
    with pytest.raises(TransferTooLargeError) as err:
        await manager.download_file(sbx.id, "/tmp/big.bin")
    assert err.value.size == 60 * MIB and err.value.limit == 50 * MIB
    assert reads == []  # nothing was read: the size came from the filesystem stat


async def test_download_stops_at_the_cap_when_the_stat_was_stale(manager: SandboxManager, monkeypatch):
    """A file that grows between the stat and the read is cut off at the cap, not read whole."""
    sbx = await manager.create_sandbox("base", SandboxSecurityConfig(max_download_bytes=MIB))
    await manager.run_command(sbx.id, "truncate -s 8M /tmp/grown.bin")
    sandbox = manager._live[sbx.id].sandbox
    real_info = sandbox.files.get_info

    async def stale(path, *a, **kw):
        info = await real_info(path, *a, **kw)
        info.size = 10
        return info

    monkeypatch.setattr(sandbox.files, "get_info", stale)
    with pytest.raises(TransferTooLargeError) as err:
        await manager.download_file(sbx.id, "/tmp/grown.bin")
    assert MIB < err.value.size < 8 * MIB


async def test_a_sandbox_larger_than_the_config_is_killed_and_refused(manager: SandboxManager, monkeypatch):
    """Where the service does not narrow (E2B's cloud), the manager checks what it got."""
    before = await running_ids(manager.settings)
    real_info = AsyncSandbox.get_info

    async def inflated(self, *a, **kw):
        info = await real_info(self, *a, **kw)
        info.memory_mb = 4096
        return info

    monkeypatch.setattr(AsyncSandbox, "get_info", inflated)
    with pytest.raises(ResourceLimitError, match="4096 MB"):
        await manager.create_sandbox("base", SandboxSecurityConfig(memory_mb=1024))
    monkeypatch.undo()
    assert await running_ids(manager.settings) <= before
    assert manager.live_ids() == []


async def test_a_failed_create_leaves_no_sandbox(manager: SandboxManager, monkeypatch):
    """The service made the sandbox but the client never saw the answer: found by its nonce and killed."""
    before = await running_ids(manager.settings)
    real_create = AsyncSandbox.create.__func__

    async def lost_answer(cls, *a, **kw):
        await real_create(cls, *a, **kw)
        raise ConnectionResetError("answer lost")

    monkeypatch.setattr(AsyncSandbox, "create", classmethod(lost_answer))
    with pytest.raises(ConnectionResetError):
        await manager.create_sandbox("base")
    monkeypatch.undo()
    assert await running_ids(manager.settings) <= before


async def test_unknown_template_is_a_clear_error(manager: SandboxManager):
    with pytest.raises(SandboxError, match="no-such-template"):
        await manager.create_sandbox("no-such-template")


def test_create_options_carry_the_config():
    c = SandboxSecurityConfig(timeout_seconds=90, memory_mb=512, cpu_cores=1)
    opts = create_options(c, "n1")
    assert opts["timeout"] >= 90 and opts["allow_internet_access"] is False and "network" not in opts
    assert opts["metadata"][META_CPU] == "1" and opts["metadata"][META_MEMORY] == "512"
    hosts = create_options(SandboxSecurityConfig(internet_access=True, allowed_hosts=["api.themoviedb.org"]), "n")
    assert hosts["network"] == {"allow_out": ["api.themoviedb.org"], "deny_out": ["0.0.0.0/0"]}
    assert "allow_internet_access" not in hosts
    assert create_options(SandboxSecurityConfig(internet_access=True), "n")["allow_internet_access"] is True
    # The config is a maximum: a smaller template's own resources are asked for, never more.
    small = create_options(SandboxSecurityConfig(memory_mb=4096, cpu_cores=4), "n", TemplateLimits(2, 2048))
    assert small["metadata"][META_CPU] == "2" and small["metadata"][META_MEMORY] == "2048"


async def test_template_limits_come_from_the_listing(manager: SandboxManager):
    limits = await manager.template_limits("base")
    assert limits is not None and limits.cpu_count >= 1 and limits.memory_mb >= 512
    assert await manager.template_limits("no-such-template") is None


async def test_internet_configs_reach_the_create_request(corral_settings):
    """The test server runs with egress off, so it refuses a create that asks for network: the
    ask reached it. (What crosses the wire exactly is in test_wire.py.)"""
    m = SandboxManager(corral_settings)
    for config in (SandboxSecurityConfig(internet_access=True, allowed_hosts=["api.themoviedb.org"]),
                   SandboxSecurityConfig(internet_access=True)):
        with pytest.raises(SandboxError, match="egress"):
            await m.create_sandbox("base", config)
    assert m.live_ids() == []


async def test_memory_and_cpu_of_the_config_reach_the_sandbox(corral_settings):
    """corral's create extension narrows the sandbox to the config: its metrics say so, and a
    program that needs more memory than the config allows is killed."""
    m = SandboxManager(corral_settings)
    try:
        sbx = await m.create_sandbox("base", SandboxSecurityConfig(memory_mb=512, cpu_cores=1))
        assert (sbx.memory_mb, sbx.cpu_count) == (512, 1)
        (metrics, *_) = await m._live[sbx.id].sandbox.get_metrics()
        assert metrics.mem_total == 512 * MIB and metrics.cpu_count == 1
        hog = await m.execute_code(sbx.id, "b = bytearray(700 * 1024 * 1024)\nb[::4096] = b'x' * len(b[::4096])\nprint('survived')")
        assert hog.exit_code != 0 and "survived" not in hog.stdout
    finally:
        await m.aclose()
