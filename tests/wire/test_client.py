"""The host's envd client against a real envd daemon on a unix socket (started by tests.envd)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.wire.client import EnvdClient, EnvdError
from tests.envd.helpers import TOKEN, Daemon, start_daemon, stop_daemon

pytestmark = pytest.mark.root


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    d = start_daemon(env_vars={"FROM_CONFIG": "yes"})
    yield d
    stop_daemon(d)


async def test_health_needs_no_token(daemon: Daemon) -> None:
    async with EnvdClient.connect(daemon.uds) as envd:
        assert await envd.health()
        await envd.wait_healthy(timeout=5)


async def test_health_of_a_missing_socket_is_false_and_waiting_for_it_fails(tmp_path: Path) -> None:
    async with EnvdClient.connect(tmp_path / "nothing.sock") as envd:
        assert not await envd.health(timeout=1)
        with pytest.raises(EnvdError, match="did not answer"):
            await envd.wait_healthy(timeout=0.2)


async def test_run_collects_output_and_exit_status(daemon: Daemon) -> None:
    async with EnvdClient.connect(daemon.uds, TOKEN) as envd:
        done = await envd.run(["/bin/bash", "-c", "echo out; echo err >&2; echo $FROM_CONFIG $EXTRA; exit 3"],
                              envs={"EXTRA": "given"})
        assert done.exit_code == 3 and done.error
        assert sorted(done.text.split("\n")) == sorted(["out", "err", "yes given", ""])
        ok = await envd.run(["/bin/true"])
        assert (ok.exit_code, ok.error) == (0, None)


async def test_run_as_a_user_in_a_directory_streams_to_a_sink(daemon: Daemon) -> None:
    seen: list[tuple[str, bytes]] = []
    async with EnvdClient.connect(daemon.uds, TOKEN) as envd:
        done = await envd.run(["/bin/sh", "-c", "id -u; pwd"], user="root", cwd="/tmp",
                              on_output=lambda stream, data: seen.append((stream, data)))
    assert done.exit_code == 0 and done.output == b""
    assert b"".join(d for s, d in seen if s == "stdout") == b"0\n/tmp\n"


async def test_the_deadline_is_envds_to_enforce(daemon: Daemon) -> None:
    async with EnvdClient.connect(daemon.uds, TOKEN) as envd:
        done = await envd.run(["/bin/sleep", "30"], timeout=0.5)
    assert done.exit_code != 0


async def test_a_wrong_token_is_an_envd_error_with_its_status(daemon: Daemon) -> None:
    async with EnvdClient.connect(daemon.uds, "wrong-token") as envd:
        with pytest.raises(EnvdError) as e:
            await envd.run(["/bin/true"])
        assert e.value.status_code == 401 and e.value.status == 503
        with pytest.raises(EnvdError):
            await envd.write_file("/tmp/x", b"x")
        with pytest.raises(EnvdError):
            await envd.hand_over("new", {})


async def test_a_missing_socket_is_an_envd_error_without_status(tmp_path: Path) -> None:
    async with EnvdClient.connect(tmp_path / "nothing.sock") as envd:
        with pytest.raises(EnvdError) as e:
            await envd.run(["/bin/true"])
    assert e.value.status_code is None


async def test_write_file_writes_as_the_user(daemon: Daemon) -> None:
    target = daemon.sandbox.user_home / "written.txt"
    async with EnvdClient.connect(daemon.uds, TOKEN) as envd:
        await envd.write_file(str(target), b"hello\n", user="user")
    assert target.read_bytes() == b"hello\n"
    assert target.stat().st_uid == 1000


async def test_start_returns_the_pid_of_a_process_that_keeps_running(daemon: Daemon) -> None:
    async with EnvdClient.connect(daemon.uds, TOKEN) as envd:
        pid = await envd.start(["/bin/sleep", "30"], tag="bg")
        assert pid > 0
        os.kill(pid, 0)   # still alive after the client closed its stream
        listed = await envd.http.post("/process.Process/List", json={}, headers={"X-Access-Token": TOKEN})
        assert any(p.get("tag") == "bg" and p["pid"] == pid for p in listed.json()["processes"])
    os.kill(pid, 9)


async def test_hand_over_swaps_the_token_and_env_vars(daemon: Daemon) -> None:
    async with EnvdClient.connect(daemon.uds, TOKEN) as envd:
        await envd.hand_over("claimed-token", {"CLAIMED": "1"})
        assert envd.access_token == "claimed-token"
        done = await envd.run(["/bin/sh", "-c", "echo $CLAIMED"])
        assert done.text == "1\n"
    async with EnvdClient.connect(daemon.uds, TOKEN) as old:
        with pytest.raises(EnvdError) as e:
            await old.run(["/bin/true"])
        assert e.value.status_code == 401
