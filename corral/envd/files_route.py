"""`GET/POST /files`: its own authentication (header token or signed URL), then the transfer.

The SDK's download and upload URLs may be signed instead of carrying the token, so this route
checks either; the streaming of bodies and multipart is `files_http`.
"""

from __future__ import annotations

from corral.envd.auth import UNAUTHORIZED_MESSAGE, signature_valid, token_matches
from corral.envd.creds import UserExecutor
from corral.envd.files_http import HTTPFailure, download, upload
from corral.envd.httpio import Request
from corral.envd.rpc import Call
from corral.wire.framing import ConnectError
from corral.wire.handoff import EnvdConfig


async def files(req: Request, config: EnvdConfig, executor: UserExecutor) -> None:
    operation = "read" if req.method == "GET" else "write"
    path_param = req.query_value("path")
    username = req.query_value("username") or None
    token = config.access_token
    if token is not None:
        header = req.headers.get("x-access-token")
        signature = req.query_value("signature")
        if header is not None:
            if not token_matches(token, header):
                return await req.respond_http_error(401, UNAUTHORIZED_MESSAGE)
        elif signature is not None:
            ok, reason = signature_valid(
                signature=signature, expiration=req.query_value("signature_expiration"),
                path=path_param or "", operation=operation, username=username, token=token)
            if not ok:
                return await req.respond_http_error(401, reason)   # E2B's envd answers the reason alone
        else:
            return await req.respond_http_error(401, UNAUTHORIZED_MESSAGE)
    call = Call(config, req, username)
    try:
        user = call.user
        if operation == "read":
            if not path_param:
                return await req.respond_http_error(400, "the path query parameter is required")
            return await download(req, user, executor, path_param, config.default_workdir)
        result = await upload(req, user, executor, config.max_upload_bytes, config.default_workdir)
        await req.respond_json(200, result)
    except HTTPFailure as exc:
        if not req.response_started:
            await req.respond_http_error(exc.status, exc.message)
    except ConnectError as exc:
        if not req.response_started:
            await req.respond_http_error(exc.http_status, exc.message)
