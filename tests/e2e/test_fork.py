"""Fork through the official SDK: N independent sandboxes with the source's files."""

from __future__ import annotations

import httpx
import pytest
from e2b import Sandbox

pytestmark = pytest.mark.e2e


def test_fork_of_five_gives_five_independent_sandboxes(sdk) -> None:  # type: ignore[no-untyped-def]
    src = Sandbox.create(timeout=300, envs={"FORK_ENV": "inherited"}, metadata={"agent": "fork-test"})
    forks: list[Sandbox] = []
    try:
        src.files.write("/home/user/origin.txt", "the source's file")
        results = src.fork(count=5, timeout=120)
        assert len(results) == 5
        forks = [r for r in results if isinstance(r, Sandbox)]
        assert len(forks) == 5, results
        assert len({f.sandbox_id for f in forks} | {src.sandbox_id}) == 6
        for i, f in enumerate(forks):
            assert f.files.read("/home/user/origin.txt") == "the source's file"
            assert f.commands.run('printf %s "$FORK_ENV"').stdout == "inherited"
            f.files.write("/home/user/mine.txt", f"fork {i}")
        for i, f in enumerate(forks):
            assert f.files.read("/home/user/mine.txt") == f"fork {i}"
        assert not src.files.exists("/home/user/mine.txt")
        assert src.commands.run("echo source runs").stdout.strip() == "source runs"
        forks[0].kill()
        assert forks[1].commands.run("echo one dies, the others live").exit_code == 0
    finally:
        for f in forks:
            f.kill()
        src.kill()


def test_fork_says_which_mode_each_got(sdk) -> None:  # type: ignore[no-untyped-def]
    src = Sandbox.create(timeout=120)
    headers = {"X-API-Key": sdk.api_key}
    try:
        res = httpx.post(f"{sdk.url}/sandboxes/{src.sandbox_id}/fork", json={"count": 2, "timeout": 60},
                         headers=headers, timeout=60)
        assert res.status_code == 201
        body = res.json()
        assert [r["mode"] for r in body] == ["filesystem", "filesystem"]
        for r in body:
            httpx.delete(f"{sdk.url}/sandboxes/{r['sandbox']['sandboxID']}", headers=headers, timeout=30)
        bad = httpx.post(f"{sdk.url}/sandboxes/{src.sandbox_id}/fork", json={"count": 1, "mode": "full"},
                         headers=headers, timeout=30)
        assert bad.status_code == 400 and "mode=filesystem" in bad.json()["message"]
        assert httpx.post(f"{sdk.url}/sandboxes/{src.sandbox_id}/fork", json={"count": 21},
                          headers=headers).status_code == 400
    finally:
        src.kill()
