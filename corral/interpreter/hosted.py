"""The interpreter as an app envd hosts on port 49999 (`corral.guest.hosting`).

The Starlette app is made on first use, so a sandbox that never runs code pays nothing for it,
unless kernels are to start with the sandbox.
"""

from __future__ import annotations

from typing import Any

from corral.guest.hosting import HostContext
from corral.interpreter.app import create_app
from corral.interpreter.contexts import InterpreterConfig


class HostedInterpreter:
    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx
        self.app: Any = None

    def get(self) -> Any:
        if self.app is None:
            self.app = create_app(InterpreterConfig(
                env_vars=self.ctx.env_vars,
                default_user=self.ctx.default_user,
                default_cwd=self.ctx.default_workdir,
                default_languages=self.ctx.start_languages,
            ))
        return self.app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.get()(scope, receive, send)

    def start(self) -> None:
        if self.ctx.start_languages:
            self.get().state.interpreter.start_default_kernels()

    def close(self) -> None:
        if self.app is not None:
            self.app.state.interpreter.kill_all()


def create_hosted(ctx: HostContext) -> HostedInterpreter:
    return HostedInterpreter(ctx)
