"""Discovery agent (§4.1): a free-text query ("sci-fi like Stranger Things") -> generated search
code -> ranked titles with reasons, in the media-gateway-agent template."""

from __future__ import annotations

import re
from typing import Any

from ..agent import AgentTask
from ..errors import ConfigError
from ..trace import RankedItem
from .base import AgentRequest, WorkflowAgent, items_from_rows
from .schemas import RankedOutput

# Words people type -> the catalog's genre names.
GENRE_ALIASES = {
    "sci-fi": "Science Fiction", "scifi": "Science Fiction", "science fiction": "Science Fiction", "space": "Science Fiction",
    "horror": "Horror", "scary": "Horror", "drama": "Drama", "comedy": "Comedy", "funny": "Comedy", "thriller": "Thriller",
    "fantasy": "Fantasy", "animated": "Animation", "animation": "Animation", "cartoon": "Animation",
    "documentary": "Documentary", "docs": "Documentary", "romance": "Romance", "romantic": "Romance", "crime": "Crime",
}


def expand_query(query: str, references: dict[str, dict[str, Any]]) -> str:
    """The query plus the themes of a "like <title>" it names, when the catalog knows that title."""
    like = re.search(r"\b(?:like|similar to)\s+(.+)$", query.lower())
    if like:
        for ref, info in references.items():
            if ref in like.group(1):
                return f"{query}. {' '.join(info.get('genres', []))}. {info.get('themes', '')}"
    return query


class DiscoveryAgent(WorkflowAgent):
    name = "discovery"
    summary = "free-text query -> generated search code -> ranked titles with reasons"
    instructions = ("Rank the catalog's titles for the person's free-text query. Map genre words with genre_aliases, "
                    "resolve 'like <title>' through references, score text similarity (TF-IDF) and genre overlap, "
                    "and give each result a short reason. Write {items: [{id, title, score, reason}], notes} sorted "
                    "by score, at most top_k items.")
    environment = "Python 3.11 with numpy, pandas and scikit-learn (media-gateway-agent); no network."
    result_schema = RankedOutput

    def build_task(self, request: AgentRequest) -> AgentTask:
        if not (request.query or "").strip():
            raise ConfigError("query", "the discovery agent needs a query")
        return AgentTask(description=f"discover titles for {request.query!r}",
                         inputs={"query": request.query, "catalog": self.catalog.documents(),
                                 "references": self.catalog.references, "genre_aliases": GENRE_ALIASES,
                                 "top_k": request.top_k})

    def interpret(self, output: Any, request: AgentRequest) -> list[RankedItem]:
        return items_from_rows(output["items"], self.catalog)

    def summarize(self, output: Any) -> str:
        return f"{len(output['items'])} titles; " + "; ".join(output.get("notes", []))
