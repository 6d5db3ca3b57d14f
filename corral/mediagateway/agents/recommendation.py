"""Recommendation agent (§4.2): preferences, content embeddings and watch history -> a ranked
list, computed by generated code in the media-gateway-agent template. On any sandbox error it
falls back to a deterministic recommender in this process, and says so (outcome `fallback`)."""

from __future__ import annotations

import re
from typing import Any

from ..agent import AgentResult, AgentTask
from ..errors import ConfigError
from ..trace import RankedItem
from .base import AgentRequest, AgentRun, WorkflowAgent, items_from_rows
from .discovery import GENRE_ALIASES
from .schemas import RankedOutput


class RecommendationAgent(WorkflowAgent):
    name = "recommendation"
    summary = "preferences + content embeddings + watch history -> ranked list (deterministic fallback)"
    instructions = ("Recommend unseen titles: build a user profile vector from genre preferences (genre_vocab gives "
                    "the embedding's first dimensions) and the watch history weighted by rating, score each title by "
                    "cosine affinity to the profile, by the earlier agents' candidate scores and by popularity, and "
                    "write {items: [{id, title, score, reason}]} with at most top_k items.")
    environment = "Python 3.11 with numpy, pandas and scikit-learn (media-gateway-agent); no network."
    result_schema = RankedOutput

    def preferences(self, request: AgentRequest) -> dict[str, Any]:
        genres: dict[str, float] = {}
        user = self.catalog.user(request.user_id) if request.user_id else None
        for g in user.favorite_genres if user else []:
            genres[g] = genres.get(g, 0.0) + 1.0
        q = (request.query or "").lower()
        for alias, genre in GENRE_ALIASES.items():
            if re.search(r"(?<![a-z])" + re.escape(alias) + r"(?![a-z])", q):
                genres[genre] = genres.get(genre, 0.0) + 1.5
        return {"genres": genres, "query": request.query}

    def history(self, request: AgentRequest) -> list[dict[str, Any]]:
        if not request.user_id:
            return []
        ratings = {r.title_id: r.rating for r in self.catalog.user_ratings(request.user_id)}
        return [{"title_id": w.title_id, "rating": ratings.get(w.title_id, 3.0), "completed": w.completed}
                for w in self.catalog.history(request.user_id)]

    def build_task(self, request: AgentRequest) -> AgentTask:
        if request.user_id and self.catalog.users and self.catalog.user(request.user_id) is None:
            raise ConfigError("user", f"no user {request.user_id!r} in the catalog")
        return AgentTask(description=f"recommend for user {request.user_id or '(anonymous)'}", inputs={
            "user_preferences": self.preferences(request), "content_embeddings": self.catalog.embeddings(),
            "watch_history": self.history(request), "genre_vocab": self.catalog.genres,
            "candidates": [{"id": self._id_of(c.title), "score": c.score} for c in request.candidates if self._id_of(c.title)],
            "catalog": self.catalog.documents(), "top_k": request.top_k})

    def _id_of(self, title: str) -> str | None:
        return next((t.id for t in self.catalog.titles if t.title == title), None)

    def interpret(self, output: Any, request: AgentRequest) -> list[RankedItem]:
        return items_from_rows(output["items"], self.catalog)

    def summarize(self, output: Any) -> str:
        return f"{len(output['items'])} recommendations; " + "; ".join(output.get("notes", []))

    def on_failure(self, result: AgentResult, request: AgentRequest) -> AgentRun:
        items = self.fallback(request)
        note = f"sandbox failed ({result.error}); answered by the deterministic fallback recommender"
        step = self.step(result, "fallback", note)
        step.items = items
        return AgentRun(step=step, items=items, notes=[note])

    def fallback(self, request: AgentRequest) -> list[RankedItem]:
        """Genre preference, earlier agents' candidates and popularity; no sandbox, no model."""
        prefs = self.preferences(request)["genres"]
        seen = {h["title_id"] for h in self.history(request)}
        found = {c.title: c.score for c in request.candidates}
        top = max(found.values(), default=1.0) or 1.0
        total = sum(prefs.values()) or 1.0
        scored = []
        for t in self.catalog.titles:
            if t.id in seen:
                continue
            genre = sum(prefs.get(g, 0.0) for g in t.genres) / total
            score = 0.5 * genre + 0.3 * found.get(t.title, 0.0) / top + 0.2 * t.popularity
            liked = [g for g in t.genres if prefs.get(g)]
            reason = "fallback: " + (f"your genres {', '.join(liked)}" if liked else "popular title")
            if t.title in found:
                reason += "; matches your query"
            scored.append(RankedItem(title=t.title, score=round(score, 4), reason=reason, year=t.year, genres=t.genres))
        scored.sort(key=lambda i: (-i.score, i.title))
        return scored[: request.top_k]
