"""E2B's npm desktop SDK (`@e2b/desktop`) unchanged against the `desktop` template: the Node test in
tests/js/desktop.test.mjs runs under `node --test`, configured by environment only. The stream
URL through a browser is shown by the Python SDK's test (tests/e2e/test_desktop.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server, stop_server
from tests.e2e.node_client import assert_node_tests_pass

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture(scope="module")
def desktop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    srv = start_server(tmp_path_factory.mktemp("desktop-js") / "data", extra_env={"CORRAL_POOL": ""})
    yield srv
    stop_server(srv)


def test_npm_desktop_sdk_drives_the_desktop(desktop_server: Server, tmp_path: Path) -> None:
    assert_node_tests_pass(desktop_server, "desktop.test.mjs", 1, tmp_path / "home")
