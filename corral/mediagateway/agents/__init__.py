"""The seven agents (§4, §2), by name."""

from __future__ import annotations

from .analysis import AnalysisAgent
from .base import AgentRequest, AgentRun, WorkflowAgent
from .content import ContentAnalyzerAgent
from .discovery import DiscoveryAgent
from .recommendation import RecommendationAgent
from .scraping import ScrapingAgent
from .search import SearchAgent
from .sona import SonaUpdateAgent

AGENTS: dict[str, type[WorkflowAgent]] = {cls.name: cls for cls in (
    DiscoveryAgent, RecommendationAgent, SearchAgent, AnalysisAgent, SonaUpdateAgent, ContentAnalyzerAgent, ScrapingAgent)}

__all__ = ["AGENTS", "AgentRequest", "AgentRun", "WorkflowAgent", "AnalysisAgent", "ContentAnalyzerAgent", "DiscoveryAgent",
           "RecommendationAgent", "ScrapingAgent", "SearchAgent", "SonaUpdateAgent"]
