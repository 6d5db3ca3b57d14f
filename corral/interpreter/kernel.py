"""What every kernel backend offers the contexts layer: start, run a cell, interrupt, stop.

Two backends implement it: `jupyter.JupyterKernel` (Python via ipykernel, R via IRkernel) and
`pipes.PipeKernel` (JavaScript/TypeScript, Java and Bash through small runtimes of our own that
speak a line protocol). A cell's output is pushed to an `emit` callback as protocol events; the
backend never sees HTTP, so streaming, keepalives and disconnects live in one place above it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from corral.errors import CorralError
from corral.guest.users import User
from corral.interpreter.events import Event

Emit = Callable[[Event], None]
EnvGetter = Callable[[], Mapping[str, str]]


class KernelDied(CorralError, RuntimeError):
    """The kernel process ended while it was starting or running a cell."""


@dataclass(frozen=True)
class KernelSpec:
    """Where and as whom a kernel runs."""

    language: str
    user: User
    cwd: str
    sandbox_env: EnvGetter


class Kernel(ABC):
    def __init__(self, spec: KernelSpec) -> None:
        self.spec = spec

    @property
    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    async def start(self, timeout: float) -> None:
        """Start the process and wait until it accepts cells; raises KernelDied or TimeoutError."""

    @abstractmethod
    async def run(self, code: str, env_vars: Mapping[str, str], emit: Emit) -> None:
        """Run one cell, emitting stdout/stderr/result/error events; raises KernelDied."""

    @abstractmethod
    def interrupt(self) -> None:
        """Ask the running cell to stop (the kernel itself must survive)."""

    @abstractmethod
    async def shutdown(self) -> None:
        """Stop the kernel process and release everything it held."""

    @abstractmethod
    def kill_now(self) -> None:
        """Synchronous best-effort kill, for daemon shutdown."""
