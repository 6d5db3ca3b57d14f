"""Prometheus metrics for the server itself (`GET /metrics`), on a private registry so that two
apps in one process (tests) never collide.

Counters and histograms are updated as things happen (creates, kills, every API request's
latency); gauges for live sandboxes and the warm pools are read from the service at scrape time,
so they are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.lifecycle import timing as server_timing

if TYPE_CHECKING:
    from corral.lifecycle import SandboxService

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5, 10)


class _LiveState(Collector):
    """Sandboxes by state and template, and each warm pool's target, ready count and history."""

    def __init__(self, service: "SandboxService") -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        by_state = GaugeMetricFamily("corral_sandboxes", "Sandboxes holding host resources, by state and template",
                                     labels=["state", "template"])
        counts = Tally((r.state, r.alias or r.template_id) for r in self.service.store.live())
        for (state, template), n in sorted(counts.items()):
            by_state.add_metric([state, template], n)
        yield by_state
        pool = self.service.pool
        target = GaugeMetricFamily("corral_pool_target", "Warm sandboxes a pool keeps ready", labels=["template"])
        ready = GaugeMetricFamily("corral_pool_ready", "Warm sandboxes ready now", labels=["template"])
        for name, size in sorted((pool.sizes if pool else {}).items()):
            target.add_metric([name], size)
            ready.add_metric([name], pool.ready(name) if pool else 0)
        yield target
        yield ready
        c = self.service.metering.pools
        for name, doc, values in (
            ("corral_pool_hits", "Creates served from a warm pool", c.hits),
            ("corral_pool_misses", "Creates for a pooled template that found its pool empty", c.misses),
            ("corral_pool_refills", "Sandboxes started into a warm pool", c.refills),
            ("corral_pool_refill_seconds", "Total seconds spent starting sandboxes into a pool", c.refill_seconds),
            ("corral_pool_claim_seconds", "Total seconds spent handing pooled sandboxes out", c.claim_seconds),
        ):
            fam = CounterMetricFamily(name, doc, labels=["template"])
            for template, v in sorted(values.items()):
                fam.add_metric([template], v)
            yield fam


class Telemetry:
    def __init__(self, service: "SandboxService | None" = None) -> None:
        self.registry = CollectorRegistry()
        self.creates = Counter("corral_sandboxes_created", "Sandboxes created", ["template"], registry=self.registry)
        self.kills = Counter("corral_sandboxes_killed", "Sandboxes killed through the API", registry=self.registry)
        self.create_seconds = Histogram(
            "corral_sandbox_create_seconds", "Server-side sandbox create latency",
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5), registry=self.registry,
        )
        self.live = Gauge("corral_sandboxes_live", "Sandboxes running or paused", registry=self.registry)
        self.requests = Histogram(
            "corral_api_request_seconds", "Control-plane request latency by route, method and status",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.service = service
        if service is not None:
            self.registry.register(_LiveState(service))

    def created(self, seconds: float, template: str) -> None:
        self.creates.labels(template=template).inc()
        self.create_seconds.observe(seconds)

    def killed(self) -> None:
        self.kills.inc()

    async def endpoint(self, request: Request) -> Response:
        self.live.set(len(request.app.state.service.list()))
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class RequestTimer:
    """ASGI middleware of the REST app: one latency observation per request, labelled by the
    route's template (`/sandboxes/{sandbox_id}`), never by the raw path (ids would explode the
    label set); requests that match no route are `unmatched`."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.telemetry.requests.labels(method=scope["method"], route=route, status=str(status)).observe(
                time.perf_counter() - t0)


async def with_server_timing(app: ASGIApp, scope: Scope, receive: Receive, send: Send, started: float) -> None:
    """Run a control-plane request, adding a `Server-Timing` header (RFC 8941 style
    `create;desc="warm pool";dur=2.113`) to responses whose handler named what it did
    (corral/lifecycle/timing.py): the server's own time from `started` (the request's arrival,
    before the API key check) to the start of the response. Clients, `corral bench` among them,
    read it to tell the server's cost from their own and the network's."""
    timing, token = server_timing.begin()

    async def send_timed(message: Message) -> None:
        if message["type"] == "http.response.start":
            value = timing.header((time.perf_counter() - started) * 1000.0)
            if value is not None:
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", value.encode())]}
        await send(message)

    try:
        await app(scope, receive, send_timed)
    finally:
        server_timing.end(token)
