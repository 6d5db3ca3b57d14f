"""Code generators: offline templates (default), Anthropic, OpenAI-compatible; chosen by
`MEDIA_GATEWAY_CODEGEN` (`offline`, `anthropic`, `openai`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..errors import ConfigError
from .base import SYSTEM_PROMPT, CodeGenerator, CodeRequest, extract_code
from .offline import OfflineGenerator

__all__ = ["CodeGenerator", "CodeRequest", "OfflineGenerator", "SYSTEM_PROMPT", "extract_code", "generator_from_env"]


def generator_from_env(env: Mapping[str, str] | None = None) -> CodeGenerator:
    env = os.environ if env is None else env
    kind = (env.get("MEDIA_GATEWAY_CODEGEN") or "offline").strip().lower()
    if kind == "offline":
        return OfflineGenerator()
    if kind == "anthropic":
        from .anthropic_gen import AnthropicGenerator

        return AnthropicGenerator.from_env(env)
    if kind in ("openai", "openai-compatible"):
        from .openai_gen import OpenAIGenerator

        return OpenAIGenerator.from_env(env)
    raise ConfigError("MEDIA_GATEWAY_CODEGEN", f"{kind!r} is not one of offline, anthropic, openai")
