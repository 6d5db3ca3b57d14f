"""The orchestrator: a user query goes to the agents that serve it, each in its own sandbox from
the template `E2B_TEMPLATES` names, with one trace per request.

Routing: discovery (generated TF-IDF search) and search (embedding similarity) are independent
and run in parallel; recommendation runs after them with their finds as candidates, plus the
user's preferences and history. The final ranking is the recommendation agent's (its fallback's
when its sandbox failed). An agent that fails is recorded in the trace, never hidden.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from .adapters import AdapterStore, DirectoryAdapterStore
from .agents import AGENTS, AgentRequest, AgentRun, WorkflowAgent
from .catalog import Catalog, load_catalog
from .codegen import CodeGenerator, generator_from_env
from .errors import ConfigError, MediaGatewayError, UnknownAgentError
from .manager import SandboxManager
from .trace import AgentStep, RankedItem, RequestTrace

DEFAULT_ADAPTER_DIR = Path.home() / ".local/share/corral/adapters"
MAX_QUERY_CHARS = 500


class Orchestrator:
    def __init__(self, manager: SandboxManager, generator: CodeGenerator, catalog: Catalog,
                 adapter_store: AdapterStore | None = None, *, top_k: int = 10) -> None:
        self.manager = manager
        self.generator = generator
        self.catalog = catalog
        self.adapter_store = adapter_store or DirectoryAdapterStore(DEFAULT_ADAPTER_DIR)
        self.top_k = top_k

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Orchestrator":
        """Everything from the environment: the sandbox service (E2B_*), the generator
        (MEDIA_GATEWAY_CODEGEN), the catalog (MEDIA_GATEWAY_CATALOG, default the shipped one)
        and the adapter store (MEDIA_GATEWAY_ADAPTER_DIR)."""
        env = os.environ if env is None else env
        store = DirectoryAdapterStore(env.get("MEDIA_GATEWAY_ADAPTER_DIR") or DEFAULT_ADAPTER_DIR)
        return cls(SandboxManager.from_env(env), generator_from_env(env),
                   load_catalog(env.get("MEDIA_GATEWAY_CATALOG") or None), store)

    def agent(self, name: str) -> WorkflowAgent:
        cls = AGENTS.get(name)
        if cls is None:
            raise UnknownAgentError(f"no agent {name!r} (known: {', '.join(AGENTS)})")
        kwargs = {"store": self.adapter_store} if name == "sona" else {}
        return cls(self.manager, self.generator, self.catalog, **kwargs)

    async def run_agent(self, name: str, request: AgentRequest) -> AgentRun:
        return await self.agent(name).run(request)

    async def _guarded(self, name: str, request: AgentRequest) -> AgentRun:
        """An agent's run; an error that escapes it becomes an `error` step of the trace."""
        agent = self.agent(name)
        started = time.monotonic()
        try:
            return await agent.run(request)
        except (MediaGatewayError, OSError) as exc:
            return AgentRun(step=AgentStep(agent=name, template=agent.template, sandbox_id=None, code="", attempts=0,
                                           logs="", error=f"{type(exc).__name__}: {exc}",
                                           duration_s=round(time.monotonic() - started, 3), sandbox_seconds=0.0,
                                           outcome="error"))

    def check_request(self, query: str, user_id: str | None) -> None:
        """Refuse a bad request before any sandbox is made (the gateway answers these with 400)."""
        if not isinstance(query, str) or not query.strip():
            raise ConfigError("query", "is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise ConfigError("query", f"is longer than {MAX_QUERY_CHARS} characters")
        if user_id is not None and self.catalog.users and self.catalog.user(user_id) is None:
            raise ConfigError("user", f"no user {user_id!r} in the catalog")

    async def run(self, query: str, *, user_id: str | None = None) -> RequestTrace:
        self.check_request(query, user_id)
        started_at = datetime.now(timezone.utc)
        started = time.monotonic()
        request = AgentRequest(query=query, user_id=user_id, top_k=self.top_k)
        discovery, search = await asyncio.gather(self._guarded("discovery", request), self._guarded("search", request))
        candidates = _merge([discovery.items, search.items])
        recommendation = await self._guarded("recommendation", request.model_copy(update={"candidates": candidates}))
        steps = [discovery.step, search.step, recommendation.step]
        ranking = recommendation.items or candidates[: self.top_k]
        return RequestTrace(request_id=uuid.uuid4().hex[:16], query=query, user_id=user_id, started_at=started_at,
                            duration_s=round(time.monotonic() - started, 3), steps=steps, recommendations=ranking,
                            sandbox_seconds=round(sum(s.sandbox_seconds for s in steps), 3))

    async def aclose(self) -> None:
        await self.manager.aclose()


def _merge(rankings: list[list[RankedItem]]) -> list[RankedItem]:
    """One candidate list from several rankings: each list's scores scaled to its best, summed per
    title, reasons joined."""
    merged: dict[str, RankedItem] = {}
    for items in rankings:
        top = max((i.score for i in items), default=0.0) or 1.0
        for item in items:
            scaled = item.score / top
            if item.title in merged:
                prev = merged[item.title]
                merged[item.title] = prev.model_copy(update={"score": round(prev.score + scaled, 4),
                                                             "reason": f"{prev.reason}; {item.reason}"})
            else:
                merged[item.title] = item.model_copy(update={"score": round(scaled, 4)})
    return sorted(merged.values(), key=lambda i: (-i.score, i.title))
