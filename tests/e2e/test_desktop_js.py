"""E2B's npm desktop SDK (`@e2b/desktop`) unchanged against the `desktop` template: the Node test in
tests/js/desktop.test.mjs runs under `node --test`, configured by environment only. The stream
URL through a browser is shown by the Python SDK's test (tests/e2e/test_desktop.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, kill_all_sandboxes, start_server, stop_server
from tests.e2e.node_client import JS_DIR, client_env, node_binary

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture(scope="module")
def desktop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    srv = start_server(tmp_path_factory.mktemp("desktop-js") / "data", extra_env={"CORRAL_POOL": ""})
    yield srv
    stop_server(srv)


def test_npm_desktop_sdk_drives_the_desktop(desktop_server: Server, tmp_path: Path) -> None:
    env = client_env(desktop_server.env(), tmp_path / "home")
    proc = subprocess.run([node_binary(), "--test", "--test-reporter=tap", "desktop.test.mjs"], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=600)
    kill_all_sandboxes(desktop_server)
    report = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, report + "\n--- server log ---\n" + desktop_server.log()
    assert "# fail 0" in proc.stdout and "# pass 1" in proc.stdout, report
