"""The sandbox's own deadline: envd ends itself (and what it started) when it passes, and the
server-only route moves or clears it."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.envd.helpers import envelope, start_daemon, stop_daemon

SLEEP_ARG = "617.4242"   # a command line no other test runs


def _wait_exit(proc: subprocess.Popen[bytes], limit_s: float = 60) -> int | None:
    """The exit status once the daemon has exited (None if it is still running after the limit,
    which bounds a hang; it is not a speed assertion)."""
    try:
        return proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.root
async def test_daemon_ends_itself_at_its_deadline_and_kills_what_it_started():
    d = start_daemon(end_at=time.time() + 20)
    try:
        async with d.client() as c:
            body = envelope({"process": {"cmd": "/bin/sleep", "args": [SLEEP_ARG]}, "tag": "sleeper"})
            async with c.stream("POST", "/process.Process/Start", content=body,
                                headers={"content-type": "application/connect+json"}) as r:
                assert r.status_code == 200
                async for _ in r.aiter_raw():   # the start event: the process runs
                    break
        out = subprocess.run(["pgrep", "-f", f"^/bin/sleep {SLEEP_ARG}$"], capture_output=True, text=True)
        pids = out.stdout.split()
        assert pids, "the sleeper should run before the deadline"
        assert _wait_exit(d.proc) is not None, "envd did not end at its deadline"
        for pid in pids:
            assert subprocess.run(["kill", "-0", pid], capture_output=True).returncode != 0, \
                f"process {pid} outlived the sandbox's deadline"
    finally:
        stop_daemon(d)


@pytest.mark.root
async def test_deadline_route_moves_and_clears_the_deadline():
    d = start_daemon()
    try:
        first = time.time() + 8
        async with d.client() as c:
            assert (await c.post("/.corral/deadline", json={"endAt": first})).status_code == 204
        async with d.client(token="wrong") as c:
            assert (await c.post("/.corral/deadline", json={"endAt": None})).status_code == 401
        async with d.client() as c:
            assert (await c.post("/.corral/deadline", json={})).status_code == 400
            assert (await c.post("/.corral/deadline", json={"endAt": "soon"})).status_code == 400
            assert (await c.post("/.corral/deadline", json={"endAt": True})).status_code == 400
            assert (await c.get("/.corral/deadline")).status_code == 405
            # Cleared (what a pause does): the daemon outlives its first deadline ...
            assert (await c.post("/.corral/deadline", json={"endAt": None})).status_code == 204
        # Past the first deadline (this waits, it does not time anything).
        assert _wait_exit(d.proc, limit_s=first + 2 - time.time()) is None, "a cleared deadline still ended the daemon"
        async with d.client() as c:
            assert (await c.get("/health")).status_code == 204
            # ... and a deadline set again (what a resume does) ends it.
            assert (await c.post("/.corral/deadline", json={"endAt": time.time() + 1})).status_code == 204
        assert _wait_exit(d.proc) is not None
    finally:
        stop_daemon(d)


@pytest.mark.root
async def test_hand_over_sets_the_deadline():
    d = start_daemon()   # a pooled sandbox: no deadline of its own yet
    try:
        async with d.client() as c:
            r = await c.post("/.corral/init", json={"accessToken": None, "envVars": {}, "endAt": time.time() + 1})
            assert r.status_code == 204
        assert _wait_exit(d.proc) is not None
    finally:
        stop_daemon(d)
