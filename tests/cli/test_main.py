"""The CLI promise: errors are one line on stderr with exit status 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "CORRAL_"))}
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, cwd=REPO, timeout=60)


def test_missing_key_is_one_clear_line():
    r = run("sandbox", "ls")
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unreachable_server_is_one_clear_line():
    r = run("sandbox", "ls", env={"E2B_API_KEY": "e2b_" + "0" * 40, "CORRAL_URL": "http://127.0.0.1:9"})
    assert r.returncode == 1 and "cannot reach" in r.stderr and "Traceback" not in r.stderr


def test_unknown_option_is_a_usage_error_not_a_traceback():
    r = run("serve", "--port", "notanumber")
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout


def test_env_prints_the_four_exports():
    r = run("env", "--api-key", "e2b_" + "1" * 40, "--url", "http://127.0.0.1:4000")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "export E2B_API_KEY=e2b_" + "1" * 40,
        "export E2B_API_URL=http://127.0.0.1:4000",
        "export E2B_SANDBOX_URL=http://127.0.0.1:4000",
        "export E2B_VOLUME_API_URL=http://127.0.0.1:4000",
    ]


def test_keys_create_ls_revoke(tmp_path):
    d = str(tmp_path / "data")
    key = run("keys", "create", "--name", "ci", "--data-dir", d).stdout.strip()
    assert key.startswith("e2b_") and len(key) == 44
    ls = run("keys", "ls", "--data-dir", d)
    assert "ci" in ls.stdout and key not in ls.stdout  # only a prefix is ever shown again
    assert run("keys", "revoke", "ci", "--data-dir", d).returncode == 0
    r = run("keys", "revoke", "ci", "--data-dir", d)
    assert r.returncode == 1 and "no key" in r.stderr


def test_subcommand_failures_exit_nonzero():
    r = run("template", "build-builtin", "no-such-template")
    assert r.returncode == 1 and "no built-in template" in r.stderr and "Traceback" not in r.stderr
