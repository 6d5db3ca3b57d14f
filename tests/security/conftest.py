"""Shared fixtures for the security tests: the official SDK pointed at the test server, one
sandbox per module, and helpers that run shell or Python inside a sandbox without raising on a
non-zero exit (most security tests *expect* a command to fail and check how it failed).
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2b import CommandExitException, CommandResult, Sandbox

from tests.tiers import sdk_for_tiers, tier_params

CGROUP_ROOT = Path("/sys/fs/cgroup")

Runner = Callable[..., CommandResult]


@pytest.fixture(scope="module", params=tier_params())
def sdk(request: pytest.FixtureRequest) -> Iterator[object]:
    """Every module here runs once per isolation tier (tests/tiers.py); `sdk.isolation` says which."""
    yield from sdk_for_tiers(request)


@pytest.fixture(scope="module")
def server(sdk):  # type: ignore[no-untyped-def]
    """The server of the tier this module runs on (tests that restart or inspect it)."""
    return sdk


@pytest.fixture(scope="module")
def sbx(sdk) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(timeout=900, metadata={"suite": "security"})
    yield sandbox
    sandbox.kill()


def run(sandbox: Sandbox, cmd: str, user: str | None = None, timeout: float = 120) -> CommandResult:
    """Run `cmd`; a non-zero exit is returned as a result instead of raised."""
    try:
        return sandbox.commands.run(cmd, user=user, timeout=timeout)  # type: ignore[arg-type]
    except CommandExitException as exc:
        return CommandResult(stdout=exc.stdout, stderr=exc.stderr, exit_code=exc.exit_code, error=exc.error)


def run_py(sandbox: Sandbox, code: str, user: str | None = "root", timeout: float = 120,
           args: list[str] | None = None) -> CommandResult:
    """Run a Python snippet inside the sandbox (shipped as a file, so no shell quoting)."""
    path = f"/tmp/snippet-{uuid.uuid4().hex[:10]}.py"
    sandbox.files.write(path, code, user="root")
    run(sandbox, f"chmod 644 {path}", user="root")
    argv = " ".join(shlex.quote(a) for a in (args or []))
    try:
        return run(sandbox, f"python3 {path} {argv}", user=user, timeout=timeout)
    finally:
        run(sandbox, f"rm -f {path}", user="root")


def _sandbox_cgroup_candidates(sandbox_id: str) -> list[Path]:
    # v1: /sys/fs/cgroup/<controller>/corral*/<id>; v2: /sys/fs/cgroup/corral*/<id>. The parent
    # may carry a per-server suffix (corral-<hash>), so match by prefix.
    return [*CGROUP_ROOT.glob(f"*/corral*/{sandbox_id}"), *CGROUP_ROOT.glob(f"corral*/{sandbox_id}")]


def cgroup_dirs(sandbox_id: str) -> list[Path]:
    """Host-side cgroup directories of a sandbox, on v1 (one per controller) or v2."""
    return sorted(p for p in _sandbox_cgroup_candidates(sandbox_id) if p.is_dir())


def cgroup_file(sandbox_id: str, v1: str, v2: str) -> Path | None:
    """`v1` is "<controller>/<file>", `v2` a file name in the unified directory."""
    controller, name = v1.split("/", 1)
    for d in cgroup_dirs(sandbox_id):
        if d.parent.parent.name == controller and (d / name).exists():
            return d / name
        if d.parent.parent == CGROUP_ROOT and (d / v2).exists():
            return d / v2
    return None
