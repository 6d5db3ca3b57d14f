"""Code generation with any OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, OpenAI), via
the official `openai` SDK.

Environment: `OPENAI_BASE_URL` (e.g. `http://127.0.0.1:8000/v1`), `OPENAI_MODEL` (required),
`OPENAI_API_KEY` (local servers usually accept any value; default `none`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import openai

from ..errors import CodeGenerationError, ConfigError
from .base import ChatModelGenerator


class OpenAIGenerator(ChatModelGenerator):
    name = "openai"

    def __init__(self, *, model: str, base_url: str | None = None, api_key: str = "none",
                 timeout_s: float = 120.0, temperature: float = 0.0) -> None:
        self.model = model
        self.temperature = temperature
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "OpenAIGenerator":
        env = os.environ if env is None else env
        model = env.get("OPENAI_MODEL")
        if not model:
            raise ConfigError("OPENAI_MODEL", "is required for MEDIA_GATEWAY_CODEGEN=openai")
        return cls(model=model, base_url=env.get("OPENAI_BASE_URL") or None, api_key=env.get("OPENAI_API_KEY") or "none")

    async def _complete(self, system: str, user: str) -> str:
        try:
            completion = await self._client.chat.completions.create(
                model=self.model, temperature=self.temperature,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            )
        except openai.APIError as exc:
            raise CodeGenerationError(f"OpenAI-compatible API: {exc}") from exc
        if not completion.choices:
            raise CodeGenerationError("OpenAI-compatible API returned no choices")
        return completion.choices[0].message.content or ""
