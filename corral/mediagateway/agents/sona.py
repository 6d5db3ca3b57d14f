"""SONA LoRA update (§4.3): the user's adapter is updated with an EWC-style penalty in the
sona-lora-updater template; the new adapter comes back as an artifact and is kept, versioned, in
the adapter store. The previous version (if any) is uploaded for the update to start from."""

from __future__ import annotations

from typing import Any

from ..adapters import AdapterStore, check_user_id
from ..agent import AgentTask
from ..errors import ConfigError
from ..security import SandboxSecurityConfig
from .base import AgentRequest, AgentRun, WorkflowAgent
from .schemas import SonaOutput

ADAPTER_IN = "/data/adapter.pt"
ADAPTER_OUT = "/output/adapter.pt"


class SonaUpdateAgent(WorkflowAgent):
    name = "sona"
    summary = "LoRA adapter update with an EWC penalty; the adapter is stored, versioned"
    instructions = ("Train a rank-`rank` LoRA adapter (A, B) on a frozen linear scorer (seeded projection) so that "
                    "it predicts each interaction's reward from its features, with an EWC penalty lambda * sum(F * "
                    f"(theta - theta_prev)^2) against the previous adapter at {ADAPTER_IN} when present. Save A, B, "
                    f"the updated Fisher estimates and the version to {ADAPTER_OUT} with torch.save, and report losses.")
    environment = "Python 3.11 with torch (CPU) and numpy; no network."
    result_schema = SonaOutput
    artifacts = (ADAPTER_OUT,)
    security = SandboxSecurityConfig(memory_mb=2048, timeout_seconds=120)

    def __init__(self, *args: Any, store: AdapterStore, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = store

    def interactions(self, request: AgentRequest) -> list[dict[str, Any]]:
        emb = self.catalog.embeddings()
        rows = [{"features": emb[r.title_id], "reward": (r.rating - 3.0) / 2.0}
                for r in self.catalog.user_ratings(request.user_id or "") if r.title_id in emb]
        if request.query:  # "I liked <title>": one more positive interaction
            liked = next((t for t in self.catalog.titles if t.title.lower() == request.query.strip().lower()), None)
            if liked is None:
                raise ConfigError("query", f"no title {request.query!r} in the catalog")
            rows.append({"features": emb[liked.id], "reward": 1.0})
        return rows

    def build_task(self, request: AgentRequest) -> AgentTask:
        if not request.user_id:
            raise ConfigError("user", "the SONA update needs a user")
        check_user_id(request.user_id)
        rows = self.interactions(request)
        if not rows:
            raise ConfigError("user", f"user {request.user_id!r} has no interactions to learn from")
        files = {}
        latest = self.store.latest(request.user_id)
        if latest is not None:
            files[ADAPTER_IN] = latest[1]
        return AgentTask(description=f"LoRA update for {request.user_id}", files=files, inputs={
            "user_id": request.user_id, "dim": len(rows[0]["features"]), "rank": 4, "ewc_lambda": 5.0,
            "steps": 60, "seed": 0, "interactions": rows})

    async def run(self, request: AgentRequest) -> AgentRun:
        out = await super().run(request)
        if out.step.outcome == "ok":
            report = out.output
            latest = self.store.latest(request.user_id or "")
            expected = latest[0] if latest else 0
            if report["previous_version"] != expected:
                raise ConfigError("adapter", f"update started from version {report['previous_version']}, store has {expected}")
            path = self.store.put(request.user_id or "", report["version"], out.artifacts["adapter.pt"], report)
            out.notes.append(f"adapter v{report['version']} stored at {path}")
            out.step.output_summary = (f"v{report['version']}: loss {report['loss_before']} -> {report['loss_after']}, "
                                       f"EWC penalty {report['ewc_penalty']}; stored {path}")
        return out
