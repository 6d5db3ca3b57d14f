"""Choosing a tier: server default < template minimum < request, never lower."""

from __future__ import annotations

import pytest

from corral.runtime.isolation import IsolationError, choose, requested_isolation

BOTH = ("namespace", "gvisor")


def test_defaults_and_raising() -> None:
    assert choose("namespace", None, None, BOTH) == "namespace"
    assert choose("namespace", "gvisor", None, BOTH) == "gvisor"
    assert choose("namespace", None, "gvisor", BOTH) == "gvisor"
    assert choose("gvisor", None, None, BOTH) == "gvisor"
    assert choose("gvisor", "namespace", None, BOTH) == "gvisor"   # server floor wins


@pytest.mark.parametrize("server,template,request_,why", [
    ("namespace", "gvisor", "namespace", "the template"),
    ("gvisor", None, "namespace", "the server's default"),
])
def test_lowering_is_refused_with_the_reason(server, template, request_, why) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IsolationError, match=why) as exc:
        choose(server, template, request_, BOTH)
    assert exc.value.status == 400 and "never lower" in str(exc.value)


def test_unknown_and_unavailable() -> None:
    with pytest.raises(IsolationError, match="unknown isolation tier 'vm'"):
        choose("namespace", None, "vm", BOTH)
    with pytest.raises(IsolationError, match="does not run"):
        choose("namespace", None, "microvm", BOTH)
    with pytest.raises(IsolationError, match="does not run"):
        choose("namespace", "gvisor", None, ("namespace",))


def test_request_channels() -> None:
    assert requested_isolation(None, {"corral.isolation": "gvisor"}) == "gvisor"
    assert requested_isolation("gvisor", {}) == "gvisor"
    assert requested_isolation(None, {"other": "x"}) is None
    assert requested_isolation("gvisor", {"corral.isolation": "gvisor"}) == "gvisor"
    with pytest.raises(IsolationError, match="disagree"):
        requested_isolation("gvisor", {"corral.isolation": "namespace"})
    with pytest.raises(IsolationError, match="string"):
        requested_isolation(3, {})
