"""`Idempotency-Key` on create, through the official SDK: a retried create returns the same
sandbox, a different body under the same key is a 409, a malformed key a 400, and the key is
remembered across a server restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from e2b import Sandbox
from e2b.exceptions import SandboxException

from tests.conftest import Server, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.root]


def test_retried_create_returns_the_same_sandbox(sdk) -> None:  # type: ignore[no-untyped-def]
    key = str(uuid.uuid4())
    first = Sandbox.create(timeout=120, metadata={"suite": "idempotency"}, idempotency_key=key)
    try:
        again = Sandbox.create(timeout=120, metadata={"suite": "idempotency"}, idempotency_key=key)
        assert again.sandbox_id == first.sandbox_id
        # The replayed answer is a working handle on the same sandbox.
        first.files.write("/home/user/mark.txt", "first")
        assert again.files.read("/home/user/mark.txt") == "first"
        listed = [s.sandbox_id for s in Sandbox.list(query=None).next_items()
                  if s.metadata.get("suite") == "idempotency"]
        assert listed.count(first.sandbox_id) == 1 and len(listed) == 1
    finally:
        first.kill()


def test_different_body_under_the_same_key_is_a_conflict(sdk, server: Server) -> None:  # type: ignore[no-untyped-def]
    key = str(uuid.uuid4())
    first = Sandbox.create(timeout=120, metadata={"suite": "idempotency-409"}, idempotency_key=key)
    try:
        with pytest.raises(SandboxException) as exc:
            Sandbox.create(timeout=120, metadata={"suite": "something else"}, idempotency_key=key)
        assert "409" in str(exc.value) or "different request body" in str(exc.value)
        r = httpx.post(server.url + "/v2/sandboxes", headers={"X-API-Key": server.api_key, "Idempotency-Key": key},
                       json={"templateID": "base", "timeout": 121}, timeout=30)
        assert r.status_code == 409 and r.json()["code"] == 409, r.text
    finally:
        first.kill()


def test_malformed_key_is_a_400(server: Server) -> None:
    for bad in ("UPPER-CASE", "a b", "x" * 256):
        r = httpx.post(server.url + "/v2/sandboxes", headers={"X-API-Key": server.api_key, "Idempotency-Key": bad},
                       json={"templateID": "base"}, timeout=30)
        assert r.status_code == 400, r.text
        assert "Idempotency-Key" in r.json()["message"]


def test_key_is_remembered_across_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = start_server(data_dir)
    opts = {"api_key": srv.api_key, "api_url": srv.url, "sandbox_url": srv.url}
    key = str(uuid.uuid4())
    sbx = None
    try:
        sbx = Sandbox.create(timeout=120, idempotency_key=key, **opts)
        stop_server(srv, kill_sandboxes=False)
        srv = start_server(data_dir)
        opts = {"api_key": srv.api_key, "api_url": srv.url, "sandbox_url": srv.url}
        again = Sandbox.create(timeout=120, idempotency_key=key, **opts)
        assert again.sandbox_id == sbx.sandbox_id
        assert again.commands.run("echo same").stdout == "same\n"
    finally:
        if sbx is not None and srv.proc.poll() is None:
            Sandbox.kill(sbx.sandbox_id, **opts)
        stop_server(srv)
