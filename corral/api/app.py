"""The ASGI application: one port for the REST control plane and all in-sandbox traffic.

A request that names a sandbox (headers or host) goes to the proxy without touching the REST
router or API-key check (it carries the sandbox's own access token, checked inside); everything
else is the control plane, which requires `X-API-Key`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from corral.api import (dashboard, sandboxes, snapshots, template_builds, templates, usage_routes, volume_content,
                        volumes)
from corral.api.auth import KeyRing
from corral.api.errors import EXCEPTION_HANDLERS, error_response
from corral.api.meter import Meter
from corral.api.proxy import SandboxProxy
from corral.api.routing import sandbox_target
from corral.api.signed_files import find_signed_sandbox, is_signed_files_request
from corral.api.metrics_history import MetricsHistory
from corral.api.telemetry import RequestTimer, Telemetry, with_server_timing
from corral.config import Settings
from corral.lifecycle import SandboxService, make_tier
from corral.runtime.base import Tier
from corral.store import Store
from corral.templates import TemplateStore
from corral.wire import ENVD_PORT

log = logging.getLogger("corral.api")

PUBLIC_PATHS = {"/health", "/metrics", *dashboard.PUBLIC_PATHS}


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class Corral:
    """The outer ASGI callable: dispatches to the proxy or the REST app."""

    def __init__(self, rest: Starlette, proxy: SandboxProxy, keys: KeyRing, *, check_keys: bool = True) -> None:
        self.rest = rest
        self.proxy = proxy
        self.keys = keys
        # False on a cluster's node: its only callers are API replicas, which checked the key and
        # prove themselves with the node credential (corral/cluster/credential.py) before this runs.
        self.check_keys = check_keys
        self.state = rest.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            target = sandbox_target(dict(scope["headers"]))
            if target is None:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.proxy.websocket(scope, receive, send, *target)
            return
        started = time.perf_counter()
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            target = sandbox_target(headers)
            if target is None and is_signed_files_request(scope["path"], scope.get("query_string", b"")):
                sandbox_id = find_signed_sandbox(self.proxy.service, scope["method"], scope["query_string"])
                if sandbox_id is None:
                    resp = error_response(401, "invalid signature")
                    await resp(scope, receive, send)
                    return
                target = (sandbox_id, ENVD_PORT)
            if target is not None:
                await self.proxy(scope, receive, send, *target)
                return
            # (Volume content requests carry the volume's token, checked by their routes.)
            public = (scope["path"] in PUBLIC_PATHS or scope["path"].startswith(template_builds.UPLOAD_PREFIX)
                      or scope["path"].startswith(volume_content.PREFIX))
            if self.check_keys and not public and not self.keys.check(
                headers.get(b"x-api-key", b"").decode("latin-1") or None
            ):
                resp = error_response(401, "Invalid API key, please visit the corral docs: keys are created with `corral keys create`")
                await resp(scope, receive, send)
                return
            await with_server_timing(self.rest, scope, receive, send, started)
            return
        await self.rest(scope, receive, send)


# Something more a server runs for its whole life, entered once the sandbox service has started
# (and so recovered) and left before it closes: a cluster node's registration and heartbeats.
LifespanHook = Callable[[SandboxService], contextlib.AbstractAsyncContextManager[None]]


def create_app(settings: Settings, *, tier: Tier | None = None, templates_store: TemplateStore | None = None,
               check_keys: bool = True, hooks: Sequence[LifespanHook] = ()) -> Corral:
    store = Store(settings.database, node_id=settings.node_id)
    keys = KeyRing(store, settings.env_api_keys)
    tmpl = templates_store if templates_store is not None else TemplateStore(settings.template_dir)
    service = SandboxService(settings, store, tmpl, tier or make_tier(settings))
    proxy = SandboxProxy(service)
    telemetry = Telemetry(service)
    meter = Meter(service)
    history = MetricsHistory(service, meter, settings.metrics_interval_s)
    service.on_kill.extend([proxy.drop, meter.forget, history.forget])

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await service.start()
        history.start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                for hook in hooks:
                    await stack.enter_async_context(hook(service))
                yield
        finally:
            await history.close()
            await asyncio.to_thread(template_builds.close, rest.state)
            await proxy.close()
            await service.close()

    rest = Starlette(
        routes=[Route("/health", health), Route("/metrics", telemetry.endpoint), *usage_routes.routes, *dashboard.routes,
                *snapshots.routes, *sandboxes.routes, *volumes.routes, *volume_content.routes, *templates.routes, *template_builds.routes],
        middleware=[Middleware(RequestTimer, telemetry=telemetry)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    rest.state.settings = settings
    rest.state.store = store
    rest.state.service = service
    rest.state.templates = tmpl
    rest.state.meter = meter
    rest.state.telemetry = telemetry
    rest.state.metrics_history = history
    return Corral(rest, proxy, keys, check_keys=check_keys)
