"""`corral gateway` and `corral mcp` refuse bad options and a bad environment with one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def corral(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("E2B_")}
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "env", "line"), [
    (["gateway", "--port", "0"], {}, "error: --port must be 1-65535, not 0"),
    (["gateway"], {"E2B_BASE_URL": "ftp://x"}, "error: E2B_BASE_URL: 'ftp://x' is not an http(s) URL"),
    (["gateway"], {"E2B_DEFAULT_MEMORY": "lots"}, "error: E2B_DEFAULT_MEMORY: 'lots' is not an integer"),
    (["mcp", "--http", "--port", "70000"], {}, "error: --port must be 1-65535, not 70000"),
    (["mcp", "--log-level", "loud"], {}, "error: --log-level must be debug, info, warning or error, not 'loud'"),
])
def test_bad_options_and_environment_are_one_line(args: list[str], env: dict[str, str], line: str) -> None:
    done = corral(*args, **env)
    assert done.returncode == 1
    assert done.stderr.strip() == line
