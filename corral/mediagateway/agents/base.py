"""What every Media Gateway agent shares: a generated program run by `SandboxedAgent` in the
template `E2B_TEMPLATES` names for it, and one `AgentStep` for the request's trace.

An agent subclass says what to ask the generator for (`instructions`, `result_schema`), what the
program gets (`build_task`) and what its output means (`interpret`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..agent import AgentResult, AgentTask, SandboxedAgent
from ..catalog import Catalog
from ..codegen import CodeGenerator, CodeRequest
from ..manager import SandboxManager
from ..security import SandboxSecurityConfig
from ..settings import Settings
from ..trace import AgentStep, Outcome, RankedItem


class AgentRequest(BaseModel):
    """One call of an agent: the person's query and user, files they gave, and what earlier
    agents of the same request found (`candidates`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    query: str | None = None
    user_id: str | None = None
    files: list[Path] = Field(default_factory=list)
    candidates: list[RankedItem] = Field(default_factory=list)
    top_k: int = 10


class AgentRun(BaseModel):
    """An agent's answer: its trace step, ranked items when it ranks, its validated output and
    the artifacts it returned (name -> bytes)."""

    step: AgentStep
    items: list[RankedItem] = Field(default_factory=list)
    output: Any = None
    artifacts: dict[str, bytes] = Field(default_factory=dict, exclude=True)
    notes: list[str] = Field(default_factory=list)


class _GeneratedCode:
    """Adapts a `CodeGenerator` to the spec's `Agent` protocol for one workflow."""

    def __init__(self, generator: CodeGenerator, request: CodeRequest) -> None:
        self.generator = generator
        self.request = request
        self.can_repair = generator.can_repair

    async def generate_code(self, task: AgentTask) -> str:
        return await self.generator.generate(self.request)

    async def repair_code(self, task: AgentTask, code: str, error: str) -> str:
        return await self.generator.generate(self.request, previous_code=code, error=error)


class WorkflowAgent:
    name: ClassVar[str]
    summary: ClassVar[str]
    instructions: ClassVar[str]
    environment: ClassVar[str] = "Python 3.11 with the standard library."
    result_schema: ClassVar[type[BaseModel] | None] = None
    artifacts: ClassVar[tuple[str, ...]] = ()
    # The sandbox this agent needs; the heavier templates (torch, Chromium) need more memory.
    security: ClassVar[SandboxSecurityConfig] = SandboxSecurityConfig()

    def __init__(self, manager: SandboxManager, generator: CodeGenerator, catalog: Catalog, *,
                 settings: Settings | None = None, security_config: SandboxSecurityConfig | None = None) -> None:
        self.manager = manager
        self.generator = generator
        self.catalog = catalog
        self.settings = settings or manager.settings
        self.security_config = security_config or self.security
        self.template = self.settings.template_for(self.name)

    # -- what a subclass says ---------------------------------------------------------------------
    def build_task(self, request: AgentRequest) -> AgentTask:
        raise NotImplementedError

    def interpret(self, output: Any, request: AgentRequest) -> list[RankedItem]:
        return []

    def files_for(self, request: AgentRequest) -> dict[str, bytes]:
        """Extra files uploaded beside /data/inputs.json (path in the sandbox -> content)."""
        return {}

    def summarize(self, output: Any) -> str:
        return ""

    # -- the shared run ---------------------------------------------------------------------------
    def code_request(self, task: AgentTask) -> CodeRequest:
        schema = self.result_schema.model_json_schema() if self.result_schema else None
        return CodeRequest(agent=self.name, instructions=self.instructions, inputs_example=task.inputs,
                           result_schema=schema, environment=self.environment)

    def sandboxed(self, task: AgentTask) -> SandboxedAgent:
        return SandboxedAgent(_GeneratedCode(self.generator, self.code_request(task)), self.manager, self.template,
                              security_config=self.security_config, result_schema=self.result_schema,
                              artifacts=self.artifacts)

    async def run(self, request: AgentRequest) -> AgentRun:
        task = self.build_task(request)
        files = self.files_for(request)
        if files:
            task = task.model_copy(update={"files": files})
        result = await self.sandboxed(task).execute_safely(task)
        return self.finish(result, request)

    def finish(self, result: AgentResult, request: AgentRequest) -> AgentRun:
        if result.success:
            items = self.interpret(result.output, request)
            step = self.step(result, "ok", self.summarize(result.output))
            step.items = items
            return AgentRun(step=step, items=items,
                            output=result.output, artifacts=result.artifacts)
        return self.on_failure(result, request)

    def on_failure(self, result: AgentResult, request: AgentRequest) -> AgentRun:
        return AgentRun(step=self.step(result, "error"))

    def step(self, result: AgentResult, outcome: Outcome, summary: str = "") -> AgentStep:
        return AgentStep(agent=self.name, template=self.template, sandbox_id=result.sandbox_id, code=result.code,
                         attempts=len(result.attempts), logs=result.logs[-20000:], error=result.error,
                         duration_s=round(result.duration_s, 3), sandbox_seconds=round(result.sandbox_seconds, 3),
                         outcome=outcome, attempt_details=result.attempts, output_summary=summary)


def items_from_rows(rows: list[dict[str, Any]], catalog: Catalog) -> list[RankedItem]:
    """Ranked items from a program's rows, completed from the catalog by id (a program's own
    title/year/genres are trusted only when the id is unknown)."""
    by_id = catalog.by_id()
    out = []
    for row in rows:
        known = by_id.get(str(row.get("id")))
        out.append(RankedItem(title=known.title if known else str(row.get("title", "?")),
                              score=round(float(row.get("score", 0.0)), 4), reason=str(row.get("reason", ""))[:500],
                              year=known.year if known else row.get("year"),
                              genres=known.genres if known else list(row.get("genres") or [])))
    return out
