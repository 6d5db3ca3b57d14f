"""Memory checkpoints on the gVisor tier, through the official SDKs (issue 11 item 3, issue 10's
full snapshots and memory forks): one server of its own (it is killed and restarted), one
code-interpreter sandbox carried through every step, so the module starts few sandboxes.

    pause()/connect()          a kernel variable and a background process survive; while
                               paused no host process of the sandbox is left (memory released)
    kill -9 of the server      the same, after a restart of it
    fork(count=3)              three copies, each with the variable and the process, each its own
                               sandbox: id, hostname, envd token (the source's is refused there)
    create_snapshot() (full)   two sandboxes started from it in parallel have the variable
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.tiers import runsc_missing

pytestmark = pytest.mark.e2e

CI_ROOTFS = Path("/var/lib/corral/templates/code-interpreter-v1/rootfs")
MARK = "sleep 7771"   # the background process each copy must still run


def _host_processes(sandbox_id: str) -> list[tuple[int, int]]:
    """(pid, RSS kB) of every host process in the sandbox's cgroups (Sentry, gofer, stubs)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if sandbox_id not in Path(f"/proc/{pid}/cgroup").read_text():
                continue
            rss = next(int(ln.split()[1]) for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if ln.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
        out.append((int(pid), rss))
    return out


@pytest.fixture(scope="module")
def gv(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    if runsc_missing():
        pytest.skip(runsc_missing() or "")
    if not (CI_ROOTFS / "usr/bin/python3").exists():
        pytest.skip("the code-interpreter-v1 template is not built")
    data = tmp_path_factory.mktemp("corral-gv-memory") / "data"
    box = {"srv": start_server(data, extra_env={"CORRAL_ISOLATION": "gvisor"}), "data": data}
    yield box
    stop_server(box["srv"])


def _use(monkeypatch: pytest.MonkeyPatch, srv) -> None:  # type: ignore[no-untyped-def]
    for k, v in srv.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("E2B_DOMAIN", raising=False)


def _value(sbx, expr: str) -> str:  # type: ignore[no-untyped-def]
    ex = sbx.run_code(expr)
    assert ex.error is None, ex.error
    return ex.text


def _has_mark(sbx) -> bool:  # type: ignore[no-untyped-def]
    return sbx.commands.run(f"pgrep -f '{MARK}' || true").stdout.strip() != ""


def _envd(srv, sandbox_id: str, token: str) -> int:  # type: ignore[no-untyped-def]
    """Status of a file read from the sandbox's envd with ``token``."""
    r = httpx.get(f"{srv.url}/files", params={"path": "/etc/hostname", "username": "user"},
                  headers={"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": "49983",
                           "X-Access-Token": token}, timeout=30)
    return r.status_code


def test_memory_survives_pause_restart_fork_and_snapshot(gv, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from e2b_code_interpreter import Sandbox

    srv = gv["srv"]
    _use(monkeypatch, srv)
    sbx = Sandbox.create(timeout=600)
    made = [sbx]
    try:
        assert _value(sbx, "kept = 41 + 1\nkept") == "42"
        sbx.commands.run(MARK, background=True)
        assert _has_mark(sbx)
        running = _host_processes(sbx.sandbox_id)
        assert running and sum(kb for _, kb in running) > 10_000, running

        # pause(): memory to disk, nothing left running on the host; connect() brings it all back.
        assert sbx.pause() is True
        doc = httpx.get(f"{srv.url}/sandboxes/{sbx.sandbox_id}", headers={"X-API-Key": srv.api_key}).json()
        assert doc["corralPause"]["how"] == "checkpoint", doc
        assert _host_processes(sbx.sandbox_id) == []
        sbx = Sandbox.connect(sbx.sandbox_id, timeout=600)
        assert _value(sbx, "kept * 2") == "84"
        assert _has_mark(sbx)

        # Paused, then the server is killed and restarted: the checkpoint is on disk.
        assert sbx.pause() is True
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        srv = gv["srv"] = start_server(gv["data"], extra_env={"CORRAL_ISOLATION": "gvisor"})
        _use(monkeypatch, srv)
        sbx = Sandbox.connect(sbx.sandbox_id, timeout=600)
        assert _value(sbx, "kept + 1") == "43"
        assert _has_mark(sbx)

        # Memory forks: parallel restores of one checkpoint, each its own sandbox.
        headers = {"X-API-Key": srv.api_key}
        raw = httpx.post(f"{srv.url}/sandboxes/{sbx.sandbox_id}/fork", json={"count": 3, "timeout": 300},
                         headers=headers, timeout=600).json()
        assert isinstance(raw, list), raw
        results = raw
        assert [r.get("mode") for r in results] == ["full"] * 3, raw
        forks = [Sandbox.connect(r["sandbox"]["sandboxID"]) for r in results]
        made += forks
        ids = {f.sandbox_id for f in forks}
        assert len(ids | {sbx.sandbox_id}) == 4
        tokens = {f._envd_access_token for f in forks} | {sbx._envd_access_token}
        assert len(tokens) == 4 and None not in tokens
        for f in forks:
            assert _value(f, "kept") == "42"
            assert _has_mark(f)
            assert f.commands.run("hostname").stdout.strip() == f.sandbox_id
            assert _envd(srv, f.sandbox_id, f._envd_access_token) == 200
            assert _envd(srv, f.sandbox_id, sbx._envd_access_token) == 401   # the source's token
            assert _envd(srv, sbx.sandbox_id, f._envd_access_token) == 401   # and the other way
        # Fresh randomness in each copy (the kernel's generator is not part of the image).
        assert len({_value(f, "import secrets; secrets.token_hex(16)") for f in forks}) == 3
        _value(forks[0], "kept = 'changed in one fork'")
        assert _value(forks[1], "kept") == "42" and _value(sbx, "kept") == "42"

        # A full snapshot: sandboxes created from it, in parallel, start with the memory.
        snap = sbx.create_snapshot()
        snap_id = getattr(snap, "snapshot_id", None) or snap["snapshotID"]
        listed = httpx.get(f"{srv.url}/snapshots", headers=headers).json()
        mine = [s for s in (listed if isinstance(listed, list) else listed.get("snapshots", []))
                if s.get("snapshotID") == snap_id]
        assert mine and mine[0]["mode"] == "full", listed
        with ThreadPoolExecutor(2) as pool:
            children = list(pool.map(lambda _: Sandbox.create(snap_id, timeout=300), range(2)))
        made += children
        for c in children:
            assert _value(c, "kept") == "42"
            assert _has_mark(c)
            assert c.commands.run("hostname").stdout.strip() == c.sandbox_id
        assert _value(sbx, "kept") == "42"    # the source kept running through it all
    finally:
        for s in made:
            try:
                s.kill()
            except Exception:  # noqa: BLE001 - best effort; stop_server kills the rest
                pass
