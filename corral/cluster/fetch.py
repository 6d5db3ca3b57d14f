"""A node fetches a template from the depot when a create needs it (templates/depot.py).

Placement prefers nodes that have a create's template on disk; when none of the sampled nodes
has it, the chosen node gets a create for a template it lacks. This middleware, in front of the
node's app, reads the create's `templateID`, and when the depot holds that template and the
node's store has no copy (or an older one), fetches it (in a thread: the node keeps serving and
heartbeating) before passing the create on. Creates of one template wait for one fetch. Anything
else, or a template the depot does not have, passes straight through: the lifecycle answers as
it always does (a 404 for an unknown template).
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.errors import CorralError
from corral.templates import TemplateStore
from corral.templates.names import TemplateNameError

log = logging.getLogger("corral.cluster")

_CREATE_PATHS = {"/sandboxes", "/v2/sandboxes"}
_MAX_BODY = 1 << 20


class TemplateFetch:
    def __init__(self, app: ASGIApp, store: TemplateStore) -> None:
        self.app = app
        self.store = store
        self._locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.store.depot is None or scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] not in _CREATE_PATHS):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            msg = await receive()
            messages.append(msg)
            size += len(msg.get("body", b""))
            if msg["type"] != "http.request" or not msg.get("more_body", False) or size > _MAX_BODY:
                break
        body = b"".join(m.get("body", b"") for m in messages)
        template = _template_of(body) if size <= _MAX_BODY else None
        if template is not None:
            try:
                await self.ensure(template)
            except CorralError as exc:
                log.error("fetching template %s for a create failed: %s", template, exc.message)
                if not await asyncio.to_thread(self.store.exists, template):
                    await _answer(send, exc.status, exc.message)   # not "not found": it is, elsewhere
                    return

        replay = iter(messages)

        async def replayed() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replayed, send)

    async def ensure(self, name: str) -> bool:
        """Fetch `name` when the depot has a newer copy than this node; True when it fetched."""
        depot = self.store.depot
        assert depot is not None
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            try:
                wanted = await asyncio.to_thread(depot.wanted, self.store, name)
            except TemplateNameError:
                return False      # a snapshot id, an alias, a name:tag: not a depot name
            if wanted is None:
                return False
            await asyncio.to_thread(depot.fetch, self.store, name)
            return True


def _template_of(body: bytes) -> str | None:
    try:
        doc = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    value = doc.get("templateID") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"code": status, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
