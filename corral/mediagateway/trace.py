"""What one request did, step by step: the orchestrator's answer and the gateway's view of it.

These models are a contract with the gateway (`corral gateway`) and the MCP front end: fields may
be added, none renamed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Outcome = Literal["ok", "fallback", "error"]


class Attempt(BaseModel):
    """One execution of generated code (an agent retries once with the error in the prompt)."""

    code: str
    exit_code: int | None = None
    error: str | None = None
    duration_s: float = 0.0


class RankedItem(BaseModel):
    title: str
    score: float
    reason: str
    year: int | None = None
    genres: list[str] = Field(default_factory=list)


class AgentStep(BaseModel):
    """One agent's part in a request: its sandbox, the code it ran, how it ended."""

    agent: str
    template: str
    sandbox_id: str | None
    code: str
    attempts: int
    logs: str
    error: str | None
    duration_s: float
    sandbox_seconds: float
    outcome: Outcome
    attempt_details: list[Attempt] = Field(default_factory=list)
    output_summary: str = ""
    items: list[RankedItem] = Field(default_factory=list)  # this agent's own ranking, if it ranks


class RequestTrace(BaseModel):
    """One request through the orchestrator: every agent step and the final ranking."""

    request_id: str
    query: str
    user_id: str | None
    started_at: datetime
    duration_s: float
    steps: list[AgentStep]
    recommendations: list[RankedItem]
    sandbox_seconds: float
