"""CORRAL_DATABASE_URL: plain PostgreSQL URLs work, bad ones give one clear line (never a password)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.config import Settings
from corral.store import Store, StoreError
from corral.store.engine import parse_url

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw", [
    "postgresql://corral@db.internal:5432/corral",
    "postgres://corral@db.internal:5432/corral",
    "postgresql+psycopg://corral:pw@db.internal/corral",
    "postgresql://corral@/corral?host=/run/postgresql",
])
def test_postgres_urls_use_psycopg(raw):
    assert parse_url(raw).drivername == "postgresql+psycopg"


@pytest.mark.parametrize(("raw", "message"), [
    ("not a url", "invalid database URL"),
    ("mysql://u@h/db", "unsupported database 'mysql'"),
    ("postgresql+asyncpg://u@h/db", "driver 'asyncpg' is not installed"),
    ("postgresql://u@h:5432", "names no database"),
    ("sqlite://", "names no file"),
])
def test_bad_urls_are_refused_with_a_reason(raw, message):
    with pytest.raises(StoreError, match=message):
        parse_url(raw)


def test_unreachable_database_is_one_line_without_the_password():
    with pytest.raises(StoreError) as err:
        Store("postgresql://corral:hunter2@127.0.0.1:1/corral")
    msg = str(err.value)
    assert msg.startswith("cannot reach the database at postgresql://corral:***@127.0.0.1:1/corral: ")
    assert "hunter2" not in msg and "\n" not in msg
    assert err.value.status == 503


def test_settings_pick_the_url_over_the_data_dir_file(monkeypatch, tmp_path):
    monkeypatch.delenv("CORRAL_DATABASE_URL", raising=False)
    assert Settings.from_env(data_dir=tmp_path).database == tmp_path / "corral.db"
    monkeypatch.setenv("CORRAL_DATABASE_URL", "postgresql://corral@db:5432/corral")
    assert Settings.from_env(data_dir=tmp_path).database == "postgresql://corral@db:5432/corral"


@pytest.mark.parametrize(("url", "expect"), [
    ("postgresql://corral:s3cret@127.0.0.1:1/corral", "cannot reach the database"),
    ("mysql://u@h/db", "unsupported database 'mysql'"),
])
def test_cli_prints_one_error_line(tmp_path, url, expect):
    env = {**os.environ, "CORRAL_DATABASE_URL": url}
    proc = subprocess.run([sys.executable, "-m", "corral.cli.main", "keys", "ls", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expect in lines[0] and "s3cret" not in lines[0]
    assert "Traceback" not in proc.stderr


def test_plain_url_from_the_environment_reaches_postgres(pg_cluster, tmp_path):
    """`corral keys` (like `corral serve`) opens the database named by CORRAL_DATABASE_URL."""
    url = pg_cluster.create_database("clikeys")
    env = {**os.environ, "CORRAL_DATABASE_URL": url}
    run = [sys.executable, "-m", "corral.cli.main", "keys"]
    made = subprocess.run([*run, "create", "--name", "from-cli", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert made.returncode == 0, made.stderr
    assert pg_cluster.psql("SELECT name FROM api_keys", db="clikeys") == "from-cli"
    assert not (tmp_path / "corral.db").exists(), "no SQLite file is made when a URL is set"
