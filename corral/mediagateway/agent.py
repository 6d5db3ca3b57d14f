"""`SandboxedAgent.execute_safely` (spec §6.2): generated code runs only inside a sandbox.

The seven steps: (1) the agent generates code, (2) a sandbox is created, (3) the task's inputs are
uploaded as `/data/inputs.json`, (4) the code runs, (5) on success `/output/results.json` (and the
agent's declared artifacts) are downloaded, (6) the sandbox is terminated, (7) the validated result
is returned. Step 6 runs on every path: a generation error, an upload or execution error, a
timeout, a download refused, invalid output, cancellation.

Outputs are validated before use (layer 4): JSON that parses, within the download cap, and against
the agent's pydantic result schema when it declares one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from .errors import InputValidationError, MediaGatewayError, OutputValidationError
from .manager import ExecutionResult, SandboxManager
from .security import Language, SandboxSecurityConfig
from .trace import Attempt

log = logging.getLogger(__name__)

INPUTS_PATH = "/data/inputs.json"
RESULTS_PATH = "/output/results.json"
MAX_ATTEMPTS = 2  # the first run, and at most one retry with the error in the prompt


class AgentTask(BaseModel):
    """What to do (`description`) and the data to do it on (`inputs`, JSON-serialisable or a JSON
    string; uploaded as /data/inputs.json)."""

    description: str
    inputs: Any = None
    files: dict[str, bytes] = {}  # more files for the program (sandbox path -> content), same cap

    def inputs_bytes(self) -> bytes | None:
        """The inputs as JSON bytes. A string must already be JSON; other values must serialise."""
        if self.inputs is None:
            return None
        if isinstance(self.inputs, (str, bytes)):
            text = self.inputs.decode() if isinstance(self.inputs, bytes) else self.inputs
            try:
                json.loads(text)
            except ValueError as exc:
                raise InputValidationError(f"task inputs are a string but not JSON: {exc}") from None
            return text.encode()
        try:
            return json.dumps(self.inputs, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise InputValidationError(f"task inputs are not JSON-serialisable: {exc}") from None


class AgentResult(BaseModel):
    success: bool
    output: Any = None
    logs: str = ""
    error: str | None = None
    # What happened, for the trace.
    sandbox_id: str | None = None
    template: str = ""
    code: str = ""
    attempts: list[Attempt] = []
    duration_s: float = 0.0
    sandbox_seconds: float = 0.0
    artifacts: dict[str, bytes] = {}


@runtime_checkable
class Agent(Protocol):
    """Writes the program for a task. `previous` carries the failed attempt's code and error when
    the sandboxed agent asks for a repair."""

    async def generate_code(self, task: AgentTask) -> str: ...


@runtime_checkable
class RepairingAgent(Agent, Protocol):
    can_repair: bool

    async def repair_code(self, task: AgentTask, code: str, error: str) -> str: ...


class _CancelCheck:
    """Raises CancelledError once the running task has been cancelled, even when the await that
    received the cancel swallowed it. The e2b SDK's command handle turns a cancel delivered to its
    event task into a stored error, or into a normal end when the stream had just finished; the
    caller's `await` then returns or raises an SDK error instead of CancelledError, and the agent
    went on to run its program to the end (seen in CI under load). ``Task.cancelling()`` still
    counts the request, so each step boundary asks it."""

    def __init__(self) -> None:
        self.task = asyncio.current_task()
        self.before = self.task.cancelling() if self.task is not None else 0

    def check(self, cause: BaseException | None = None) -> None:
        if self.task is not None and self.task.cancelling() > self.before:
            raise asyncio.CancelledError() from cause


@dataclass
class SandboxedAgent:
    """An agent whose code runs in a fresh sandbox of `template` under `security_config`."""

    agent: Agent
    manager: SandboxManager
    template: str
    security_config: SandboxSecurityConfig = field(default_factory=SandboxSecurityConfig)
    language: Language = Language.PYTHON
    result_schema: type[BaseModel] | None = None
    artifacts: tuple[str, ...] = ()  # sandbox paths downloaded with the results (under the same cap)

    async def execute_safely(self, task: AgentTask) -> AgentResult:
        started = time.monotonic()
        result = AgentResult(success=False, template=self.template)
        inputs = task.inputs_bytes()  # bad inputs fail before anything is created
        sandbox_id: str | None = None
        cancel = _CancelCheck()
        try:
            # Step 1: the agent writes the program.
            code = await self.agent.generate_code(task)
            result.code = code
            # Step 2: a sandbox for this task only.
            sandbox = await self.manager.create_sandbox(self.template, self.security_config)
            sandbox_id = result.sandbox_id = sandbox.id
            cancel.check()
            await self.manager.run_command(sandbox_id, "mkdir -p /data /output && chmod 1777 /data /output", user="root")
            cancel.check()
            # Step 3: inputs.
            if inputs is not None:
                await self.manager.upload_file(sandbox_id, INPUTS_PATH, inputs)
            for path, content in task.files.items():
                await self.manager.upload_file(sandbox_id, path, content)
            cancel.check()
            # Step 4: run, and retry once with the error when the agent can repair its code.
            execution = await self._execute(sandbox_id, code, result)
            cancel.check()
            if execution.exit_code != 0 and getattr(self.agent, "can_repair", False) and len(result.attempts) < MAX_ATTEMPTS:
                code = await self.agent.repair_code(task, code, execution.error or execution.stderr)  # type: ignore[attr-defined]
                result.code = code
                execution = await self._execute(sandbox_id, code, result)
                cancel.check()
            result.logs = execution.stdout + (("\n" + execution.stderr) if execution.stderr else "")
            result.error = execution.error
            # Step 5: outputs, only after a successful run.
            if execution.exit_code == 0:
                raw = await self.manager.download_file(sandbox_id, RESULTS_PATH)
                for path in self.artifacts:
                    result.artifacts[path.rsplit("/", 1)[-1]] = await self.manager.download_file(sandbox_id, path)
                result.output = self.validate_output(raw)
                result.success = True
        except MediaGatewayError as exc:
            cancel.check(exc)   # an error the SDK made of our cancellation is the cancellation
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            # Step 6: terminate, on every path (shielded: a cancelled task still kills its sandbox).
            if sandbox_id is not None:
                result.sandbox_seconds = self.manager.sandbox_seconds(sandbox_id)
                await asyncio.shield(self._terminate(sandbox_id))
            result.duration_s = time.monotonic() - started
        # Step 7.
        return result

    async def _execute(self, sandbox_id: str, code: str, result: AgentResult) -> ExecutionResult:
        execution = await self.manager.execute_code(sandbox_id, code, self.language)
        result.attempts.append(Attempt(code=code, exit_code=execution.exit_code, error=execution.error,
                                       duration_s=execution.duration_s))
        return execution

    async def _terminate(self, sandbox_id: str) -> None:
        """Kill the sandbox; one retry, because a sandbox left running is the failure that costs."""
        try:
            await self.manager.terminate(sandbox_id)
        except Exception as first:
            log.warning("terminate %s failed (%s); retrying", sandbox_id, first)
            await self.manager.terminate(sandbox_id)

    def validate_output(self, raw: bytes) -> Any:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise OutputValidationError(f"{RESULTS_PATH} is not JSON: {exc}") from None
        if self.result_schema is not None:
            try:
                return self.result_schema.model_validate(data).model_dump(mode="json")
            except ValidationError as exc:
                raise OutputValidationError(f"{RESULTS_PATH} does not match {self.result_schema.__name__}: {exc}") from None
        return data
