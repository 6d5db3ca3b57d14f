"""Fixtures: the Media Gateway layer against a sandbox service.

`service` is a corral server (the session's `server` fixture) and, when `E2B_API_KEY` is set and
no local URL is (E2B_API_URL, E2B_SANDBOX_URL, E2B_BASE_URL), E2B's cloud as well; the tests that
take it run the same code against both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from e2b import AsyncSandbox

from corral.mediagateway import SandboxManager, Settings

LOCAL_VARS = ("E2B_API_URL", "E2B_SANDBOX_URL", "E2B_BASE_URL")


def cloud_configured() -> bool:
    return bool(os.environ.get("E2B_API_KEY")) and not any(os.environ.get(v) for v in LOCAL_VARS)


@pytest.fixture(params=["corral", "e2b-cloud"])
def service(request: pytest.FixtureRequest) -> Settings:
    if request.param == "e2b-cloud":
        if not cloud_configured():
            pytest.skip("E2B's cloud: set E2B_API_KEY (and no local URL) to run against it")
        return Settings.from_env(os.environ)
    server = request.getfixturevalue("server")
    return Settings.from_env(server.env())


@pytest.fixture
def corral_settings(server) -> Settings:
    return Settings.from_env(server.env())


@pytest.fixture
async def manager(service: Settings) -> Iterator[SandboxManager]:
    m = SandboxManager(service)
    yield m
    await m.aclose()


async def running_ids(settings: Settings) -> set[str]:
    """Every running sandbox the service lists for this key."""
    pages = AsyncSandbox.list(**settings.sdk_options())
    ids: set[str] = set()
    while pages.has_next:
        ids |= {s.sandbox_id for s in await pages.next_items()}
    return ids
