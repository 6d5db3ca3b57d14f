"""The offline generator: each workflow's program from a template shipped with the package.

It is the default, so every agent runs with no key and no network. Its programs read their
parameters from /data/inputs.json, so one template serves every task of its agent.
"""

from __future__ import annotations

from importlib import resources

from ..errors import CodeGenerationError
from .base import CodeRequest, extract_code

_SUFFIX = {"python": "py", "bash": "sh", "javascript": "js"}


def program_source(agent: str, language: str = "python") -> str:
    name = f"{agent}.{_SUFFIX.get(language, language)}"
    path = resources.files("corral.mediagateway.programs").joinpath(name)
    if not path.is_file():
        raise CodeGenerationError(f"the offline generator has no {language} program for agent {agent!r}")
    return path.read_text()


class OfflineGenerator:
    name = "offline"
    can_repair = False

    async def generate(self, request: CodeRequest, *, previous_code: str | None = None,
                       error: str | None = None) -> str:
        source = program_source(request.agent, request.language)
        # The same path as a model's answer: a fenced block, extracted.
        return extract_code(f"```{request.language}\n{source}```", request.language)
