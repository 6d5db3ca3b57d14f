"""`corral usage` fails with one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def _run(*args: str, url: str = "http://127.0.0.1:1") -> subprocess.CompletedProcess:
    env = {**os.environ, "CORRAL_URL": url, "E2B_API_KEY": "e2b_" + "0" * 40}
    return subprocess.run([sys.executable, "-m", "corral.cli.main", "usage", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_unreachable_server_is_one_line():
    done = _run("--by", "agent")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: cannot reach the corral server at http://127.0.0.1:1")


def test_usage_help_names_the_options():
    done = _run("--help")
    assert done.returncode == 0
    for opt in ("--since", "--until", "--by", "--json"):
        assert opt in done.stdout
