"""Analysis agent: a pandas report on ratings and watch history, with a chart returned as a PNG
artifact, in the media-gateway-analysis template."""

from __future__ import annotations

from typing import Any

from ..agent import AgentTask
from .base import AgentRequest, WorkflowAgent
from .schemas import AnalysisOutput

CHART = "/output/genre_ratings.png"


class AnalysisAgent(WorkflowAgent):
    name = "analysis"
    summary = "pandas report on ratings and watch history, chart returned as a PNG artifact"
    instructions = ("With pandas, report mean rating and rating count per genre (a title counts for each of its "
                    "genres), the five best-rated titles with at least min_ratings ratings, and the watch completion "
                    "rate, for user_id only when it is set. Save a bar chart of mean rating by genre to "
                    f"{CHART} with matplotlib (Agg) and write the report as JSON.")
    environment = "Python 3.11 with pandas, numpy, scipy and matplotlib (Agg backend); no network."
    result_schema = AnalysisOutput
    artifacts = (CHART,)

    def build_task(self, request: AgentRequest) -> AgentTask:
        return AgentTask(description="ratings report", inputs={
            "user_id": request.user_id, "catalog": self.catalog.documents(), "min_ratings": 2,
            "ratings": [r.model_dump() for r in self.catalog.ratings],
            "watch_history": [w.model_dump() for w in self.catalog.watch_history]})

    def summarize(self, output: Any) -> str:
        best = output["genres"][0] if output["genres"] else None
        head = f"best genre {best['genre']} ({best['mean_rating']})" if best else "no ratings"
        return f"{output['rows']} ratings; {head}; completion {output['completion_rate']}"
