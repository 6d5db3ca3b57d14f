"""Pause and resume through the official SDK, in both modes (`pause(mode=...)`)."""

from __future__ import annotations

import os
import time
import signal
from pathlib import Path

import pytest
from e2b import Sandbox

from corral.runtime.namespace.disk import loop_devices_backed_by
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("mode", ["full", "filesystem"])
def test_ten_cycles_keep_every_file(sdk, mode: str) -> None:  # type: ignore[no-untyped-def]
    sbx = Sandbox.create(timeout=300)
    try:
        for i in range(10):
            sbx.files.write(f"/home/user/cycle-{i}.txt", f"written before pause {i}")
            assert sbx.pause(mode=mode) is True
            info = Sandbox.get_info(sbx.sandbox_id)
            assert info.state.value == "paused"
            sbx = Sandbox.connect(sbx.sandbox_id, timeout=240)
            for j in range(i + 1):
                assert sbx.files.read(f"/home/user/cycle-{j}.txt") == f"written before pause {j}"
        assert sbx.commands.run("echo alive").stdout.strip() == "alive"
    finally:
        sbx.kill()


def test_pause_twice_is_false_and_info_says_what_survives(sdk) -> None:  # type: ignore[no-untyped-def]
    import httpx
    sbx = Sandbox.create(timeout=120)
    try:
        assert sbx.pause(mode="full") is True
        assert sbx.pause(mode="full") is False
        doc = httpx.get(f"{sdk.url}/sandboxes/{sbx.sandbox_id}", headers={"X-API-Key": sdk.api_key}).json()
        assert doc["corralPause"]["how"] == "freezer"
        assert "not a host reboot" in doc["corralPause"]["survives"]
    finally:
        sbx.kill()


def test_resume_restores_the_asked_timeout(sdk) -> None:  # type: ignore[no-untyped-def]
    sbx = Sandbox.create(timeout=60)
    try:
        sbx.pause(mode="filesystem")
        sbx = Sandbox.connect(sbx.sandbox_id, timeout=1800)
        info = sbx.get_info()
        left = (info.end_at - info.started_at).total_seconds()
        assert left > 1000      # the asked 1800 s, not the 300 s default nor the 60 s of create
    finally:
        sbx.kill()


def test_filesystem_pause_survives_kill_9_of_the_server(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    data = tmp_path / "data"
    srv = start_server(data)
    for k, v in srv.env().items():
        monkeypatch.setenv(k, v)
    sbx = Sandbox.create(timeout=300)
    sid = sbx.sandbox_id
    sbx.files.write("/home/user/keep.txt", "through a crash")
    assert sbx.pause(mode="filesystem")
    workdir = data / "sandboxes" / sid
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait()
    srv2 = start_server(data)
    for k, v in srv2.env().items():
        monkeypatch.setenv(k, v)
    try:
        assert Sandbox.get_info(sid).state.value == "paused"
        sbx = Sandbox.connect(sid, timeout=120)
        assert sbx.files.read("/home/user/keep.txt") == "through a crash"
        sbx.kill()
        assert not workdir.exists()
        assert loop_devices_backed_by(workdir / "disk.img") == []
    finally:
        stop_server(srv2)


def test_auto_pause_on_timeout_then_traffic_resumes_it(sdk) -> None:  # type: ignore[no-untyped-def]
    sbx = Sandbox.create(timeout=3, lifecycle={"on_timeout": "pause", "auto_resume": True})
    try:
        sbx.files.write("/home/user/before.txt", "kept through auto-pause")
        deadline = time.monotonic() + 60
        while Sandbox.get_info(sbx.sandbox_id).state.value != "paused" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert Sandbox.get_info(sbx.sandbox_id).state.value == "paused"
        # Ordinary SDK traffic to the paused sandbox: the first request waits for the resume.
        assert sbx.files.read("/home/user/before.txt") == "kept through auto-pause"
        assert Sandbox.get_info(sbx.sandbox_id).state.value == "running"
    finally:
        sbx.kill()
