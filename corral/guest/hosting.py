"""How envd hosts another in-sandbox app (the code interpreter) on one of E2B's ports.

envd knows the app only by this interface and by the entry point it is named with
(`corral.wire.constants.HOSTED_APPS`); the app knows envd only by the `HostContext` it gets.
So neither package imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class HostContext:
    env_vars: Callable[[], Mapping[str, str]]   # the sandbox's env vars now (they change at hand-over)
    default_user: str
    default_workdir: str | None
    start_languages: tuple[str, ...]            # kernels to start with the daemon (warm start)


class HostedApp(Protocol):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    def start(self) -> None:
        """Called once the daemon's loop runs (warm start); must not block."""

    def close(self) -> None:
        """Called at daemon shutdown, synchronously: kill what it started."""
