"""E2B's npm SDKs (`e2b`, `@e2b/code-interpreter`) unchanged against a corral server: the Node
tests in tests/js/sdk.test.mjs run under `node --test`, configured by environment only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server, stop_server
from tests.e2e.node_client import assert_node_tests_pass
from tests.e2e.private_store import private_store

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture(scope="module")
def js_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    root = tmp_path_factory.mktemp("js")
    store = private_store(root / "store", ("base", "code-interpreter-v1"))
    srv = start_server(root / "data", extra_env={"CORRAL_TEMPLATE_DIR": str(store.root), "CORRAL_POOL": ""})
    yield srv
    stop_server(srv)


def test_npm_sdks_pass_their_node_tests(js_server: Server, tmp_path: Path) -> None:
    assert_node_tests_pass(js_server, "sdk.test.mjs", 2, tmp_path / "home")
