"""A scripted orchestrator for the gateway's own checks (input handling, escaping, concurrency):
it answers with a RequestTrace of the layer's real models, whose content the test chooses. The
end-to-end tests use the real `Orchestrator` against a local corral server instead."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

from corral.mediagateway.trace import AgentStep, Attempt, RankedItem, RequestTrace
from tests.mediagateway.frontends import cli_log  # noqa: F401 - the fixture, for this package's tests


def make_trace(query: str, user_id: str | None, titles: list[str]) -> RequestTrace:
    steps = [
        AgentStep(agent=name, template=template, sandbox_id=f"sbx{n}{uuid.uuid4().hex[:8]}",
                  code=f"# {name}\nimport json\nprint(json.dumps({{'agent': '{name}'}}))", attempts=1,
                  logs=f"{name} ran\n", error=None, duration_s=0.5 + n, sandbox_seconds=0.4 + n, outcome=outcome)
        for n, (name, template, outcome) in enumerate([("discovery", "media-gateway-agent", "ok"),
                                                       ("search", "media-gateway-search", "ok"),
                                                       ("recommendation", "media-gateway-agent", "fallback")])
    ]
    steps[2].attempt_details = [Attempt(code="raise RuntimeError('first try')", exit_code=1, error="RuntimeError: first try",
                                        duration_s=0.2),
                                Attempt(code="print('second try')", exit_code=0, duration_s=0.3)]
    steps[2].attempts = 2
    steps[2].output_summary = "fell back to the deterministic recommender"
    items = [RankedItem(title=t, score=round(1 - i / 10, 3), reason=f"because of {query}", year=2000 + i, genres=["sci-fi"])
             for i, t in enumerate(titles)]
    return RequestTrace(request_id=uuid.uuid4().hex[:16], query=query, user_id=user_id,
                        started_at=datetime.now(timezone.utc), duration_s=1.5, steps=steps, recommendations=items,
                        sandbox_seconds=round(sum(s.sandbox_seconds for s in steps), 3))


class ScriptedOrchestrator:
    """Answers every query with `titles`; `hold` (when set) makes each run wait for it, so a test
    can keep one request running while it sends another."""

    def __init__(self, titles: list[str], *, hold: asyncio.Event | None = None, fail: Exception | None = None) -> None:
        self.titles = titles
        self.hold = hold
        self.fail = fail
        self.calls: list[tuple[str, str | None]] = []
        self.running = 0

    async def run(self, query: str, *, user_id: str | None = None) -> RequestTrace:
        self.calls.append((query, user_id))
        self.running += 1
        try:
            if self.hold is not None:
                await self.hold.wait()
            if self.fail is not None:
                raise self.fail
            return make_trace(query, user_id, self.titles)
        finally:
            self.running -= 1
