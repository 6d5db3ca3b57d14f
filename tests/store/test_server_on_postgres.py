"""A real `corral serve` keeping its state in PostgreSQL, driven by the unmodified `e2b` SDK."""

from __future__ import annotations

import os
import uuid

import pytest
from e2b import Sandbox, SandboxQuery

from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg_server(pg_cluster, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    db = f"serve_{uuid.uuid4().hex[:8]}"
    url = pg_cluster.create_database(db)
    env = {"CORRAL_DATABASE_URL": url, "CORRAL_POOL": ""}
    srv = start_server(tmp_path / "data", extra_env=env)
    for key, value in srv.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("E2B_DOMAIN", raising=False)
    servers = [srv]

    def restart():  # type: ignore[no-untyped-def]
        stop_server(servers[-1], kill_sandboxes=False)
        servers.append(start_server(tmp_path / "data", port=int(srv.url.rsplit(":", 1)[1]), extra_env=env))
        return servers[-1]

    yield srv, restart, db
    stop_server(servers[-1])


def test_create_list_kill_through_the_sdk(pg_server, pg_cluster):  # type: ignore[no-untyped-def]
    srv, _, db = pg_server
    tag = uuid.uuid4().hex[:12]
    sbx = Sandbox.create(template="base", metadata={"run": tag}, timeout=120)
    try:
        assert sbx.commands.run("echo on-postgres").stdout.strip() == "on-postgres"
        listed = Sandbox.list(query=SandboxQuery(metadata={"run": tag})).next_items()
        assert [s.sandbox_id for s in listed] == [sbx.sandbox_id]
        # The record is in PostgreSQL, not in a SQLite file in the data dir.
        row = pg_cluster.psql(f"SELECT state, metadata->>'run' FROM sandboxes WHERE sandbox_id = '{sbx.sandbox_id}'",
                              db=db)
        assert row == f"running|{tag}"
        assert not (srv.data_dir / "corral.db").exists()
    finally:
        assert sbx.kill()
    assert Sandbox.list(query=SandboxQuery(metadata={"run": tag})).next_items() == []
    row = pg_cluster.psql(f"SELECT state FROM sandboxes WHERE sandbox_id = '{sbx.sandbox_id}'", db=db)
    assert row == "killed"


def test_restarted_server_readopts_its_sandbox_from_postgres(pg_server):  # type: ignore[no-untyped-def]
    _, restart, _ = pg_server
    sbx = Sandbox.create(template="base", timeout=120)
    try:
        sbx.files.write("/tmp/kept.txt", "still here")
        restart()
        again = Sandbox.connect(sbx.sandbox_id)
        assert again.files.read("/tmp/kept.txt") == "still here"
        assert again.commands.run("echo after-restart").stdout.strip() == "after-restart"
    finally:
        Sandbox.kill(sbx.sandbox_id)
