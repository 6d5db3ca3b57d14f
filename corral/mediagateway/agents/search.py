"""Search agent: vector similarity over the catalog's embeddings, computed in the
media-gateway-search template with the offline embedding model it ships."""

from __future__ import annotations

from typing import Any

from ..agent import AgentTask
from ..errors import ConfigError
from ..security import SandboxSecurityConfig
from ..trace import RankedItem
from .base import AgentRequest, WorkflowAgent, items_from_rows
from .discovery import expand_query
from .schemas import RankedOutput


class SearchAgent(WorkflowAgent):
    name = "search"
    summary = "semantic vector search over the catalog with the template's offline embedding model"
    instructions = ("Embed every catalog title (title, genres, description) and the query with search_utils.embed "
                    "(unit-length vectors), rank by cosine similarity and write {items: [{id, title, score, reason}]} "
                    "with at most top_k items.")
    environment = "Python 3.11, torch CPU, sentence-transformers, search_utils.embed (offline MiniLM); no network."
    result_schema = RankedOutput
    # torch and the model need room: the template's own 2 GB.
    security = SandboxSecurityConfig(memory_mb=2048, timeout_seconds=180)

    def build_task(self, request: AgentRequest) -> AgentTask:
        if not (request.query or "").strip():
            raise ConfigError("query", "the search agent needs a query")
        return AgentTask(description=f"semantic search for {request.query!r}",
                         inputs={"query": expand_query(request.query or "", self.catalog.references),
                                 "catalog": self.catalog.documents(), "top_k": request.top_k})

    def interpret(self, output: Any, request: AgentRequest) -> list[RankedItem]:
        return items_from_rows(output["items"], self.catalog)

    def summarize(self, output: Any) -> str:
        return f"{len(output['items'])} titles; " + "; ".join(output.get("notes", []))
