"""An API replica: authenticate, then hand every request to the node that should answer it.

The replica implements no sandbox operation itself: each node runs the same `corral.api` routes
and lifecycle as an all-in-one server, so the router only decides where a request goes and
streams it there unchanged (Connect server streams, uploads and downloads unbuffered; a client
that hangs up cancels the node's request; WebSockets relayed frame by frame):

- in-sandbox traffic (envd, interpreter, exposed ports; the sandbox named by the E2b-Sandbox-*
  headers or the Host) and REST calls on one sandbox (`/sandboxes/{id}/...`) go to the sandbox's
  node; a lost node's sandboxes answer 503 at once;
- a create goes to the node placement picks (best-of-K), and to another one if that node cannot
  be reached; a create that mounts a volume goes to the node that holds it (`volumes.py`), and so
  does the volume's content API;
- a sandbox list is corrected for lost nodes (`listing.py`);
- a node that does not answer makes the router re-read the registry at once, so a node the
  database already calls lost is a 503 "lost" on the first try, not a 502 until the cache ages;
- everything else (lists, templates, builds, snapshots, usage, the dashboard) reads the shared
  database or template store the same on every node, and goes to one node all replicas agree on
  (the first ready one by id), so a template build's uploads and status polls meet.

The API key is checked here, against the keys all replicas share in the database (a valid one is
trusted for CORRAL_KEY_CACHE seconds, `keys.py`); nodes take
only the node credential, which the router adds and a client cannot send (it is removed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter

import httpx
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from corral.api import volume_content
from corral.api.app import PUBLIC_PATHS
from corral.api.proxy import forward, hop_by_hop
from corral.api.routing import sandbox_target
from corral.api.template_builds import UPLOAD_PREFIX
from corral.api.websocket import HANDSHAKE_HEADERS, relay_frames
from corral.cluster import listing, placement
from corral.cluster.credential import without_credential
from corral.cluster.directory import NodeDirectory
from corral.cluster.keys import CachedKeys
from corral.cluster.errors import ClusterUnavailable, no_node, node_lost, node_unreachable
from corral.cluster.links import NodeLinks
from corral.cluster.volumes import VolumeHolders, parse, volume_names
from corral.config import Settings
from corral.errors import Conflict, CorralError
from corral.store import NodeRecord, NodeState

log = logging.getLogger("corral.cluster")

_ONE_SANDBOX = re.compile(r"^/(?:v2/)?sandboxes/(?P<id>[^/]+)(?:/|$)")
_CREATE_PATHS = {"/sandboxes", "/v2/sandboxes"}
_MAX_CREATE_BODY = 1 << 20
_CREATE_TRIES = 3


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"code": status, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class ClusterRouter:
    def __init__(self, settings: Settings, keys: CachedKeys, directory: NodeDirectory, links: NodeLinks) -> None:
        self.settings = settings
        self.keys = keys
        self.directory = directory
        self.links = links
        self.inflight: Counter[str] = Counter()
        self.volumes = VolumeHolders(directory)

    # --- the ASGI entry ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._http(scope, receive, send)
        except CorralError as exc:
            await _answer(send, exc.status, exc.message)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.directory.refresh()
                except CorralError as exc:
                    await send({"type": "lifespan.startup.failed", "message": exc.message})
                    return
                self.directory.start()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.directory.close()
                await self.links.close()
                self.keys.store.engine.dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = without_credential(list(scope["headers"]))
        scope = {**scope, "headers": headers}
        target = sandbox_target(dict(headers))
        if target is not None:
            sandbox_id, port = target
            node = await self._owner(sandbox_id)
            if node is None:
                # What an all-in-one server answers; the SDK maps "was not found" to not-running.
                await _answer(send, 502, f"The sandbox {sandbox_id} was not found")
                return
            # The node's proxy re-derives the target from these (and a user's service sees the Host).
            out = [(k, v) for k, v in headers if (k == b"host" or not hop_by_hop(k))
                   and k not in (b"e2b-sandbox-id", b"e2b-sandbox-port")]
            out += [(b"e2b-sandbox-id", sandbox_id.encode()), (b"e2b-sandbox-port", str(port).encode())]
            await self._stream(scope, receive, send, node, out, sandbox_id)
            return
        path = scope["path"]
        if path == "/health":
            await _answer_ok(send)
            return
        # As on an all-in-one server: uploads and volume content carry their own signed tokens.
        public = path in PUBLIC_PATHS or path.startswith(UPLOAD_PREFIX) or path.startswith(volume_content.PREFIX)
        if not public and not await self._key_ok(dict(headers)):
            await _answer(send, 401, "Invalid API key, please visit the corral docs: keys are created with `corral keys create`")
            return
        out = [(k, v) for k, v in headers if not hop_by_hop(k)]
        if scope["method"] == "POST" and path in _CREATE_PATHS:
            await self._create(scope, receive, send, out)
            return
        if scope["method"] == "GET" and path in listing.LIST_PATHS:
            await self._list(scope, send, out)
            return
        sandbox_id = None
        if (m := _ONE_SANDBOX.match(path)) is not None:
            sandbox_id = m["id"]
            node = await self._owner(sandbox_id)
            if node is None:
                await _answer(send, 404, f"sandbox {sandbox_id} not found")
                return
            if scope["method"] == "DELETE":
                self.directory.forget(sandbox_id)
        elif path.startswith(volume_content.PREFIX):
            volume_id = path[len(volume_content.PREFIX):].split("/", 1)[0]
            node = await self.volumes.node_for_content(volume_id) or await self._any_node()
        else:
            node = await self._any_node()
        await self._stream(scope, receive, send, node, out, sandbox_id)

    async def _key_ok(self, headers: dict[bytes, bytes]) -> bool:
        presented = headers.get(b"x-api-key", b"").decode("latin-1") or None
        return await asyncio.to_thread(self.keys.check, presented)

    # --- choosing the node ---------------------------------------------------------------------

    async def _owner(self, sandbox_id: str) -> NodeRecord | None:
        node_id = await self.directory.owner(sandbox_id)
        if node_id is None:
            return None
        node = await self.directory.node(node_id)
        if node is None or node.state == NodeState.LOST.value:
            # The cache may be up to a second old: a node that just came back is reachable now.
            await self.directory.refresh()
            node = await self.directory.node(node_id)
        if node is None or node.state == NodeState.LOST.value:
            raise node_lost(sandbox_id, node_id)
        return node

    async def _any_node(self) -> NodeRecord:
        ready = sorted(await self.directory.ready(), key=lambda n: n.node_id)
        if not ready:
            raise no_node()
        return ready[0]

    # --- forwarding ----------------------------------------------------------------------------

    async def _stream(self, scope: Scope, receive: Receive, send: Send, node: NodeRecord,
                      headers: list[tuple[bytes, bytes]], sandbox_id: str | None = None) -> None:
        client = self.links.client(node.advertise_url)

        async def unreachable() -> CorralError | None:
            # The registry may already say what became of the node: re-read it rather than
            # answer from a cache up to a second old.
            if await self._lost_now(node.node_id):
                if sandbox_id is not None:
                    return node_lost(sandbox_id, node.node_id)
                return ClusterUnavailable(f"node {node.node_id} is lost (it stopped heartbeating)")
            return None

        await forward(scope, receive, send, client, headers, unreachable=node_unreachable(node.node_id),
                      on_unreachable=unreachable)

    async def _lost_now(self, node_id: str) -> bool:
        await self.directory.refresh()
        current = await self.directory.node(node_id)
        return current is None or current.state == NodeState.LOST.value

    async def _list(self, scope: Scope, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        query, asked = listing.node_query(scope.get("query_string", b"").decode("latin-1"))
        lost = await listing.lost_sandboxes(self.directory)
        node = await self._any_node()
        try:
            resp = await self.links.client(node.advertise_url).request("GET", scope["path"], headers=headers,
                                                                       params=query or None)
        except httpx.HTTPError as exc:
            raise ClusterUnavailable(f"{node_unreachable(node.node_id)}: {exc.__class__.__name__}") from None
        body, count = listing.corrected(resp.content, asked, lost) if resp.status_code == 200 else (resp.content, 0)
        out = [(k.lower(), v) for k, v in resp.headers.raw if not hop_by_hop(k.lower())]
        out += [(listing.HEADER, str(count).encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": resp.status_code, "headers": out})
        await send({"type": "http.response.body", "body": body})

    async def _place(self, template: str | None, volumes: list[str],
                     tried: set[str]) -> tuple[NodeRecord | None, NodeRecord]:
        """(the node holding the create's volumes or None, the node to send it to)."""
        holder = await self.volumes.node_for(volumes)
        live = await self.directory.live_counts()
        k = self.settings.placement_k
        if holder is not None:
            try:
                return holder, placement.choose([holder], template, live, self.inflight, 1)
            except ClusterUnavailable:
                raise Conflict(f"volume {volumes[0] if len(volumes) == 1 else volumes} is mounted on node "
                               f"{holder.node_id}, which has no room for another sandbox; a volume's filesystem "
                               "is mounted by one machine at a time, so its sandboxes cannot go elsewhere") from None
        nodes = await self.directory.ready()
        if volumes and (home := await self.volumes.home_for(volumes)) is not None and home.node_id not in tried:
            try:   # free volumes: their home first, where their content calls go too
                return None, placement.choose([home], template, live, self.inflight, 1)
            except ClusterUnavailable:
                pass   # no room there: any node (the node's claim still guards the volume)
        return None, placement.choose(nodes, template, live, self.inflight, k, exclude=tried)

    async def _create(self, scope: Scope, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        body = await _read_body(receive)
        doc = parse(body)
        template = _template_of(doc)
        volumes = volume_names(doc)
        tried: set[str] = set()
        moved = False
        for _ in range(_CREATE_TRIES):
            holder, node = await self._place(template, volumes, tried)
            self.inflight[node.node_id] += 1
            try:
                resp = await self.links.client(node.advertise_url).request(
                    "POST", scope["path"], headers=headers, content=body,
                    params=scope.get("query_string", b"").decode("latin-1") or None)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # The node never got the request: safe to place it elsewhere (a volume's node: no).
                log.warning("node %s did not take a create; placing it on another node", node.node_id)
                if holder is not None:
                    if await self._lost_now(node.node_id):
                        continue   # node_for now says why (409 lost)
                    raise ClusterUnavailable(node_unreachable(node.node_id)) from None
                tried.add(node.node_id)
                await self.directory.refresh()
                continue
            except httpx.HTTPError as exc:
                raise ClusterUnavailable(f"{node_unreachable(node.node_id)}: {exc.__class__.__name__}") from None
            finally:
                self.inflight[node.node_id] -= 1
            if resp.status_code == 409 and volumes and not moved:
                # Another replica's create claimed a free volume on another node at the same
                # moment (the node refused: store/volumes.claim); follow it there, once.
                moved = True
                again = await self.volumes.node_for(volumes)
                if again is not None and again.node_id != node.node_id:
                    log.warning("volumes %s are held by node %s now: the create follows them there", volumes,
                                again.node_id)
                    continue
            out = [(k.lower(), v) for k, v in resp.headers.raw if not hop_by_hop(k.lower())]
            out.append((b"content-length", str(len(resp.content)).encode()))
            await send({"type": "http.response.start", "status": resp.status_code, "headers": out})
            await send({"type": "http.response.body", "body": resp.content})
            return
        raise no_node(template)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = without_credential(list(scope["headers"]))
        target = sandbox_target(dict(headers))
        try:
            node = await self._owner(target[0]) if target is not None else None
        except CorralError:
            node = None
        if target is None or node is None:
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        sandbox_id, port = target
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        uri = self.links.ws_base(node.advertise_url) + path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        extra = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers
                 if k not in HANDSHAKE_HEADERS and k not in (b"e2b-sandbox-id", b"e2b-sandbox-port")]
        extra += [("E2b-Sandbox-Id", sandbox_id), ("E2b-Sandbox-Port", str(port)),
                  ("X-Corral-Node-Credential", self.links.secret)]
        host = dict(headers).get(b"host")
        if host is not None:
            extra.append(("X-Forwarded-Host", host.decode("latin-1")))
        try:
            upstream = await ws_connect(uri, additional_headers=extra, subprotocols=scope.get("subprotocols") or None,
                                        open_timeout=10, max_size=None, compression=None,
                                        ssl=self.links.ssl_context() if uri.startswith("wss://") else None)
        except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
            await receive()
            await send({"type": "websocket.close", "code": 1011})
            return
        await receive()   # websocket.connect
        try:
            await relay_frames(receive, send, upstream)
        finally:
            await upstream.close()


async def _answer_ok(send: Send) -> None:
    body = b'{"status":"ok"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        msg: Message = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > _MAX_CREATE_BODY:
            raise CorralError("create request body too large", status=413)
        chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return b"".join(chunks)


def _template_of(doc: object) -> str | None:
    # A malformed body: the node answers the 400.
    value = doc.get("templateID") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None
