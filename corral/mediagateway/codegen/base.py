"""The code-generation interface, the prompt every generator answers, and code extraction."""

from __future__ import annotations

import json
import re
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from ..errors import CodeGenerationError

SYSTEM_PROMPT = (
    "You write one self-contained program for a sandboxed Media Gateway agent. The sandbox has no "
    "network. Read the task's inputs from /data/inputs.json, write the result as JSON to "
    "/output/results.json (and any declared artifacts under /output/), print short progress notes "
    "to stdout, and exit non-zero on failure. Output only the program, in one fenced code block."
)


class CodeRequest(BaseModel):
    """What an agent asks a generator for: its name (the offline generator keys its programs by
    it), the instructions, a sample of the inputs' shape, the result schema and the language."""

    agent: str
    instructions: str
    language: str = "python"
    inputs_example: Any = None
    result_schema: dict[str, Any] | None = None
    environment: str = ""

    def prompt(self, previous_code: str | None = None, error: str | None = None) -> str:
        parts = [f"Agent: {self.agent}", f"Task: {self.instructions}", f"Language: {self.language}"]
        if self.environment:
            parts.append(f"Sandbox environment: {self.environment}")
        if self.inputs_example is not None:
            sample = json.dumps(self.inputs_example, default=str)[:2000]
            parts.append(f"/data/inputs.json looks like (truncated): {sample}")
        if self.result_schema is not None:
            parts.append(f"/output/results.json must validate against this JSON schema: {json.dumps(self.result_schema)}")
        if previous_code is not None:
            parts.append(f"Your previous program failed.\nError: {error}\nProgram:\n```{self.language}\n{previous_code}\n```\nFix it.")
        return "\n\n".join(parts)


@runtime_checkable
class CodeGenerator(Protocol):
    """Writes programs. `can_repair`: whether asking again with the error can give other code
    (true for models, false for the offline templates), so agents retry only when it can help."""

    name: str
    can_repair: bool

    async def generate(self, request: CodeRequest, *, previous_code: str | None = None,
                       error: str | None = None) -> str: ...


class ChatModelGenerator:
    """Base of the generators backed by a chat model: the request becomes one system and one user
    message, the program is the fenced code in the answer, and asking again with the error can give
    other code. Subclasses only say how to send the two messages to their API."""

    name: str
    can_repair = True

    async def generate(self, request: CodeRequest, *, previous_code: str | None = None,
                       error: str | None = None) -> str:
        answer = await self._complete(SYSTEM_PROMPT, request.prompt(previous_code, error))
        return extract_code(answer, request.language)

    async def _complete(self, system: str, user: str) -> str:
        """The model's answer text; API failures raise CodeGenerationError."""
        raise NotImplementedError


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_ALIASES = {"py": "python", "python3": "python", "js": "javascript", "ts": "typescript", "sh": "bash", "shell": "bash"}


def extract_code(text: str, language: str = "python") -> str:
    """The program in a model's answer: the fenced block in `language` (the longest if several),
    else the first fenced block, else the whole answer when it has no fence at all."""
    blocks = [(_ALIASES.get(tag.lower(), tag.lower()), body) for tag, body in _FENCE.findall(text)]
    if blocks:
        same = [body for tag, body in blocks if tag == language]
        code = max(same, key=len) if same else blocks[0][1]
    else:
        code = text
    code = code.strip("\n")
    if not code.strip():
        raise CodeGenerationError("the generator returned no code")
    return code + "\n"
