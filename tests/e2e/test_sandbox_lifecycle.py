"""Sandbox lifecycle through the unmodified official `e2b` SDK: create, info, list, timeouts, kill.

These are the calls every E2B user makes first; if any of them needs a patched SDK or an
unusual option, corral is not a drop-in replacement.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from e2b import Sandbox, SandboxQuery
from e2b.exceptions import AuthenticationException, SandboxException, SandboxNotFoundException

pytestmark = pytest.mark.e2e

WRONG_KEY = "e2b_" + "0" * 40


@pytest.fixture(scope="module")
def run_tag() -> str:
    """Metadata value unique to this test run, so list filters never match other tests' sandboxes."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def sbx(sdk, run_tag: str) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(
        metadata={"suite": "lifecycle", "run": run_tag},
        envs={"CORRAL_E2E_GREETING": "hello from create", "CORRAL_E2E_SPACES": "a b  c"},
        timeout=300,
    )
    yield sandbox
    sandbox.kill()


def _wait_until(predicate, limit_s: float = 60.0, step_s: float = 0.5) -> bool:  # type: ignore[no-untyped-def]
    """Poll for an eventually-true condition; the limit only bounds a hung test, it asserts nothing."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def test_create_sets_envs_for_every_command(sbx: Sandbox) -> None:
    result = sbx.commands.run('printf "%s|%s" "$CORRAL_E2E_GREETING" "$CORRAL_E2E_SPACES"')
    assert result.exit_code == 0
    assert result.stdout == "hello from create|a b  c"


def test_get_info_reports_what_create_asked_for(sbx: Sandbox, run_tag: str) -> None:
    info = sbx.get_info()
    assert info.sandbox_id == sbx.sandbox_id
    assert info.metadata == {"suite": "lifecycle", "run": run_tag}
    assert info.state.value == "running"
    assert info.template_id
    assert info.cpu_count == 2
    assert info.memory_mb == 1024
    assert info.end_at > info.started_at
    # The lifetime asked for (300 s) is what the server keeps, give or take clock granularity.
    assert 290 <= (info.end_at - info.started_at).total_seconds() <= 310


def test_is_running_for_a_live_sandbox(sbx: Sandbox) -> None:
    assert sbx.is_running() is True


def test_list_filters_by_metadata(sdk, sbx: Sandbox, run_tag: str) -> None:  # type: ignore[no-untyped-def]
    other = Sandbox.create(metadata={"suite": "lifecycle-other", "run": run_tag, "odd": "prod x&y=z"}, timeout=120)
    try:
        def ids(meta: dict[str, str]) -> set[str]:
            found: set[str] = set()
            pager = Sandbox.list(query=SandboxQuery(metadata=meta))
            while True:
                found.update(s.sandbox_id for s in pager.next_items())
                if not pager.has_next:
                    return found

        assert ids({"run": run_tag}) == {sbx.sandbox_id, other.sandbox_id}
        assert ids({"run": run_tag, "suite": "lifecycle"}) == {sbx.sandbox_id}
        # Characters that need quoting survive the SDK's double URL-encoding.
        assert ids({"odd": "prod x&y=z"}) == {other.sandbox_id}
        assert ids({"run": run_tag, "suite": "no-such-suite"}) == set()
        listed = [s for s in Sandbox.list(query=SandboxQuery(metadata={"run": run_tag})).next_items()
                  if s.sandbox_id == other.sandbox_id]
        assert listed and listed[0].metadata["odd"] == "prod x&y=z"
    finally:
        other.kill()


def test_set_timeout_moves_the_end(sbx: Sandbox) -> None:
    sbx.set_timeout(900)
    first = sbx.get_info().end_at
    sbx.set_timeout(120)
    second = sbx.get_info().end_at
    assert second < first
    assert 100 <= (first - second).total_seconds() <= 800
    sbx.set_timeout(300)


def test_sandbox_is_gone_after_its_timeout(sdk) -> None:  # type: ignore[no-untyped-def]
    short = Sandbox.create(timeout=120, metadata={"suite": "timeout"})
    try:
        assert short.commands.run("echo alive").stdout == "alive\n"
        short.set_timeout(2)
        assert _wait_until(lambda: not short.is_running()), "sandbox still running long after its timeout"
        with pytest.raises(SandboxNotFoundException):
            short.get_info()
        assert short.sandbox_id not in {s.sandbox_id for s in Sandbox.list().next_items()}
        assert Sandbox.kill(short.sandbox_id) is False
        with pytest.raises(SandboxException):
            short.commands.run("echo still here")
    finally:
        Sandbox.kill(short.sandbox_id)  # a sandbox left running would outlive the test server


def test_kill_returns_true_then_false(sdk) -> None:  # type: ignore[no-untyped-def]
    victim = Sandbox.create(timeout=120)
    try:
        assert victim.is_running() is True
        assert victim.kill() is True
        assert victim.is_running() is False
        assert victim.kill() is False
        assert Sandbox.kill(victim.sandbox_id) is False
        with pytest.raises(SandboxNotFoundException):
            victim.get_info()
    finally:
        Sandbox.kill(victim.sandbox_id)


def test_kill_of_unknown_id_is_false(sdk) -> None:  # type: ignore[no-untyped-def]
    assert Sandbox.kill("a" * 20) is False


def test_wrong_api_key_is_rejected_everywhere(sdk, sbx: Sandbox) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AuthenticationException):
        Sandbox.create(api_key=WRONG_KEY, timeout=60)
    with pytest.raises(AuthenticationException):
        Sandbox.list(api_key=WRONG_KEY).next_items()
    with pytest.raises(AuthenticationException):
        Sandbox.get_info(sbx.sandbox_id, api_key=WRONG_KEY)
    # A wrong key must not be able to kill someone's sandbox either.
    with pytest.raises(AuthenticationException):
        Sandbox.kill(sbx.sandbox_id, api_key=WRONG_KEY)
    assert sbx.is_running() is True


def test_test_servers_refuse_egress(sdk) -> None:  # type: ignore[no-untyped-def]
    """The suite's own guard (tests/conftest.py): the host-namespace test server has no egress."""
    from e2b.exceptions import SandboxException

    with pytest.raises(SandboxException, match="egress is disabled"):
        Sandbox.create(allow_internet_access=True)
