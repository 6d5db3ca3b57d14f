"""Configuration by the spec's names (§7.2), read from the environment.

| variable | meaning |
|---|---|
| `E2B_API_KEY` | the key (required by the SDK) |
| `E2B_BASE_URL` | a corral server: the one URL of its API and sandboxes; `https://api.<domain>` of E2B's cloud sets the domain instead |
| `E2B_DOMAIN`, `E2B_API_URL`, `E2B_SANDBOX_URL` | the SDK's own; explicit values win over `E2B_BASE_URL` |
| `E2B_DEFAULT_TIMEOUT`, `E2B_DEFAULT_MEMORY` | the default security config's timeout (s) and memory (MB) |
| `E2B_TEMPLATES` | the ConfigMap's agent-type -> template block (`discovery: media-gateway-agent`, one per line) |

Any bad value raises one `ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .security import SandboxSecurityConfig

# E2B's own cloud domains: a base URL `https://api.<one of these>` means "E2B's cloud".
E2B_CLOUD_DOMAINS = ("e2b.app", "e2b.dev", "e2b.pro")

# Agent type -> template. Keys are the agents' names; `browser` (the ConfigMap's name for the
# desktop sandbox) is accepted for `scraping`. On a corral server the desktop template is
# `desktop`; the ConfigMap's `e2b/desktop` is E2B's public name for the same thing.
DEFAULT_TEMPLATES: dict[str, str] = {
    "discovery": "media-gateway-agent",
    "recommendation": "media-gateway-agent",
    "search": "media-gateway-search",
    "analysis": "media-gateway-analysis",
    "sona": "sona-lora-updater",
    "content": "content-analyzer",
    "scraping": "desktop",
}
TEMPLATE_KEY_ALIASES = {"browser": "scraping", "recommend": "recommendation", "sona-lora": "sona"}


def parse_templates(text: str) -> dict[str, str]:
    """Parse the ConfigMap's `E2B_TEMPLATES` block: `key: template` lines, blank lines and `#`
    comments ignored. Unknown agent types and malformed lines are errors."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip().strip("'\""), value.strip().strip("'\"")
        if not sep or not key or not value:
            raise ConfigError("E2B_TEMPLATES", f"line {n} {raw.strip()!r}: expected 'agent: template'")
        key = TEMPLATE_KEY_ALIASES.get(key, key)
        if key not in DEFAULT_TEMPLATES:
            raise ConfigError("E2B_TEMPLATES", f"line {n}: unknown agent type {key!r} (known: {', '.join(DEFAULT_TEMPLATES)}, browser)")
        if any(c.isspace() for c in value):
            raise ConfigError("E2B_TEMPLATES", f"line {n}: template name {value!r} contains spaces")
        out[key] = value
    return out


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not an integer") from None


def _url(name: str, raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"{raw!r} is not an http(s) URL")
    return raw.strip().rstrip("/")


@dataclass(frozen=True)
class Settings:
    """Where the sandboxes are and what a sandbox may do by default."""

    api_key: str | None = None
    domain: str | None = None
    api_url: str | None = None
    sandbox_url: str | None = None
    default_security: SandboxSecurityConfig = field(default_factory=SandboxSecurityConfig)
    templates: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))

    @property
    def is_local(self) -> bool:
        """True when the SDK is pointed at a URL of our own (a corral server), not a domain."""
        return bool(self.api_url or self.sandbox_url)

    def sdk_options(self) -> dict[str, Any]:
        """Keyword arguments for the SDK's create/connect/kill (its `ApiParams`)."""
        opts: dict[str, Any] = {}
        for key in ("api_key", "domain", "api_url", "sandbox_url"):
            value = getattr(self, key)
            if value:
                opts[key] = value
        return opts

    def template_for(self, agent: str) -> str:
        return self.templates.get(agent) or DEFAULT_TEMPLATES[agent]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        api_key = env.get("E2B_API_KEY") or None
        domain = env.get("E2B_DOMAIN") or None
        api_url = _url("E2B_API_URL", env["E2B_API_URL"]) if env.get("E2B_API_URL") else None
        sandbox_url = _url("E2B_SANDBOX_URL", env["E2B_SANDBOX_URL"]) if env.get("E2B_SANDBOX_URL") else None
        if env.get("E2B_BASE_URL"):
            base = _url("E2B_BASE_URL", env["E2B_BASE_URL"])
            host = urlsplit(base).hostname or ""
            cloud = next((d for d in E2B_CLOUD_DOMAINS if host == f"api.{d}"), None)
            if cloud:
                domain = domain or cloud
            else:
                api_url = api_url or base
                sandbox_url = sandbox_url or base
        timeout = _int(env, "E2B_DEFAULT_TIMEOUT")
        memory = _int(env, "E2B_DEFAULT_MEMORY")
        changes: dict[str, int] = {}
        if timeout is not None:
            changes["timeout_seconds"] = timeout
        if memory is not None:
            changes["memory_mb"] = memory
        try:
            security = SandboxSecurityConfig(**changes)
        except ConfigError as exc:
            name = {"timeout_seconds": "E2B_DEFAULT_TIMEOUT", "memory_mb": "E2B_DEFAULT_MEMORY"}.get(exc.field, exc.field)
            raise ConfigError(name, str(exc).split(": ", 1)[-1]) from None
        templates = dict(DEFAULT_TEMPLATES)
        if env.get("E2B_TEMPLATES"):
            templates.update(parse_templates(env["E2B_TEMPLATES"]))
        return cls(api_key, domain, api_url, sandbox_url, security, templates)
