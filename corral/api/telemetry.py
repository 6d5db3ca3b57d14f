"""Prometheus metrics for the server itself (`GET /metrics`), on a private registry so that two
apps in one process (tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.creates = Counter("corral_sandboxes_created", "Sandboxes created", ["template"], registry=self.registry)
        self.kills = Counter("corral_sandboxes_killed", "Sandboxes killed through the API", registry=self.registry)
        self.create_seconds = Histogram(
            "corral_sandbox_create_seconds", "Server-side sandbox create latency",
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5), registry=self.registry,
        )
        self.live = Gauge("corral_sandboxes_live", "Sandboxes running or paused", registry=self.registry)

    def created(self, seconds: float, template: str) -> None:
        self.creates.labels(template=template).inc()
        self.create_seconds.observe(seconds)

    def killed(self) -> None:
        self.kills.inc()

    async def endpoint(self, request: Request) -> Response:
        self.live.set(len(request.app.state.service.list()))
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
