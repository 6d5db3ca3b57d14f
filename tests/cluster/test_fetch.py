"""A node fetches a create's template from the depot on demand (the create waits for one fetch),
and a damaged archive is a clear 503, never a 404 "not found"."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from corral.cluster.fetch import TemplateFetch
from corral.templates import TemplateStore
from corral.templates.depot import TemplateDepot
from tests.templates.helpers import make_template

pytestmark = pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")


def test_a_create_on_a_node_without_the_template_waits_for_one_fetch(tmp_path: Path) -> None:
    depot = TemplateDepot(tmp_path / "depot")
    make_template(TemplateStore(tmp_path / "a", depot=depot), "tiny", {"etc/hostname": "x\n"})
    b = TemplateStore(tmp_path / "b", depot=depot)
    seen: list[tuple[bytes, bool]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        msg = await receive()
        seen.append((msg.get("body", b""), b.exists("tiny")))
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fetch = TemplateFetch(app, b)
    body = json.dumps({"templateID": "tiny", "timeout": 30}).encode()

    async def create(payload: bytes) -> int:
        sent: list[dict] = []

        async def receive():  # type: ignore[no-untyped-def]
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(msg):  # type: ignore[no-untyped-def]
            sent.append(msg)

        await fetch({"type": "http", "method": "POST", "path": "/v2/sandboxes", "headers": []}, receive, send)
        return sent[0]["status"]

    async def main() -> list[int]:
        return list(await asyncio.gather(*(create(body) for _ in range(3))))

    assert asyncio.run(main()) == [201, 201, 201]
    assert seen == [(body, True)] * 3, "the app got the body unchanged, after the template arrived"
    assert depot.cached_digest(b, "tiny") == depot.ref("tiny").digest
    # A damaged archive of a template the node lacks: a clear 503, not a 404 "not found".
    make_template(TemplateStore(tmp_path / "a", depot=depot), "other", {"y": "1\n"})
    (depot.blobs / depot.ref("other").digest).write_bytes(b"garbage")
    other = json.dumps({"templateID": "other"}).encode()
    assert asyncio.run(create(other)) == 503
    # Names the depot cannot hold (a snapshot id, name:tag) and unknown ones pass straight on.
    assert asyncio.run(create(json.dumps({"templateID": "nope"}).encode())) == 201
    assert asyncio.run(create(json.dumps({"templateID": "tiny:v1"}).encode())) == 201
    assert asyncio.run(create(b"{broken")) == 201
