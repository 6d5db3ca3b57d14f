"""`/.corral/init`: hand a pre-started (pooled) sandbox to its owner.

A warm pool starts sandboxes before anyone asks for them, with a token only the server knows;
claiming one swaps in the token the client gets and the client's env vars. The route is
server-only (`corral.wire.constants.SERVER_ONLY_PREFIX`): the proxy refuses every path under it,
so only the host side, which holds the socket, reaches it, and only with the current token.
"""

from __future__ import annotations

from corral.envd.connect import get_str_map
from corral.envd.deadline import Deadline, parse_end_at
from corral.envd.httpio import Request
from corral.envd.processes import ProcessManager
from corral.wire.framing import MAX_MESSAGE_BYTES, ConnectError, loads_message
from corral.wire.handoff import EnvdConfig


async def hand_over(req: Request, config: EnvdConfig, processes: ProcessManager,
                    deadline: Deadline | None = None) -> None:
    try:
        body = loads_message(await req.read_body(MAX_MESSAGE_BYTES))
        token = body.get("accessToken")
        if token is not None and (not isinstance(token, str) or not token):
            raise ConnectError("invalid_argument", "accessToken must be a non-empty string or null")
        env_vars = get_str_map(body, "envVars")
        end_at = parse_end_at(body) if "endAt" in body else None
    except ConnectError as exc:
        return await req.respond_http_error(400, exc.message)
    config.access_token = token
    config.env_vars = dict(env_vars)
    processes.env_vars = dict(env_vars)
    if deadline is not None and "endAt" in body:
        deadline.set(end_at)
    return await req.respond(204, b"", None)
