"""Boundary tests run on every isolation tier this machine has.

A module opts in by overriding the ``sdk`` fixture with :func:`sdk_for_tiers` (see
tests/security/conftest.py): the module then runs once per tier, each time against a test server
whose default isolation is that tier, so the tests themselves stay tier-agnostic. The gVisor run
is skipped, with the reason, where runsc is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

TIERS = ("namespace", "gvisor")


def runsc_missing() -> str | None:
    from corral.runtime.gvisor.runsc import runsc_installed

    if runsc_installed():
        return None
    return "gVisor's runsc is not installed (scripts/install-runsc.sh): the gvisor tier is not tested"


def tier_params() -> list:  # type: ignore[type-arg]
    missing = runsc_missing()
    return [pytest.param("namespace", id="namespace"),
            pytest.param("gvisor", id="gvisor",
                         marks=pytest.mark.skipif(missing is not None, reason=missing or ""))]


def skip_on(tier: str, *tiers: str, reason: str) -> None:
    """Inside a test: this check does not apply to ``tier`` (say why)."""
    if tier in tiers:
        pytest.skip(f"not on the {tier} tier: {reason}")


def server_for(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The session's test server for the tier in ``request.param``."""
    return request.getfixturevalue(f"{request.param}_server")


def sdk_for_tiers(request: pytest.FixtureRequest) -> Iterator[object]:
    """Body of an ``sdk`` fixture parametrised with :func:`tier_params` (module scope)."""
    yield from use_server(server_for(request))


def use_server(server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Point the official SDK at ``server`` through its environment, for one module."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        mp.delenv("E2B_DOMAIN", raising=False)
        mp.delenv("E2B_DEBUG", raising=False)
        yield server


@pytest.fixture(scope="module", params=tier_params())
def tiered_sdk(request: pytest.FixtureRequest) -> Iterator[object]:
    """An ``sdk`` fixture that runs its module once per tier. Opt a module in with
    ``sdk = tiered_sdk`` (a module-level fixture overrides tests/conftest.py's)."""
    yield from sdk_for_tiers(request)


@pytest.fixture(scope="module")
def tiered_server(sdk):  # type: ignore[no-untyped-def]
    """The server the module's tier runs on (``server = tiered_server`` beside ``sdk``)."""
    return sdk
