"""Code generation with the Anthropic Messages API (the official `anthropic` SDK).

Environment: `ANTHROPIC_API_KEY` (required), `ANTHROPIC_MODEL` (default below), and the SDK's own
`ANTHROPIC_BASE_URL`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import anthropic

from ..errors import CodeGenerationError, ConfigError
from .base import ChatModelGenerator

DEFAULT_MODEL = "claude-sonnet-5-5"


class AnthropicGenerator(ChatModelGenerator):
    name = "anthropic"

    def __init__(self, *, api_key: str, model: str = DEFAULT_MODEL, base_url: str | None = None,
                 max_tokens: int = 4096, timeout_s: float = 120.0) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AnthropicGenerator":
        env = os.environ if env is None else env
        key = env.get("ANTHROPIC_API_KEY")
        if not key:
            raise ConfigError("ANTHROPIC_API_KEY", "is required for MEDIA_GATEWAY_CODEGEN=anthropic")
        return cls(api_key=key, model=env.get("ANTHROPIC_MODEL") or DEFAULT_MODEL, base_url=env.get("ANTHROPIC_BASE_URL") or None)

    async def _complete(self, system: str, user: str) -> str:
        try:
            message = await self._client.messages.create(
                model=self.model, max_tokens=self.max_tokens, system=system,
                messages=[{"role": "user", "content": user}],
            )
        except anthropic.APIError as exc:
            raise CodeGenerationError(f"Anthropic API: {exc}") from exc
        return "".join(getattr(block, "text", "") for block in message.content)
