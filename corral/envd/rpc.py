"""The Connect RPC machinery of envd: one call's context and the three call shapes.

Services (`process_rpc`, `filesystem_rpc`) are plain tables of handlers; this module runs them:
unary calls (JSON in, JSON out), server streams (one request envelope, a stream of envelopes and
an end-of-stream frame) and the one client stream (StreamInput). Framing is `corral.wire.framing`;
decoding of protobuf-JSON fields is `corral.envd.connect`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from corral.envd.auth import basic_username
from corral.envd.connect import parse_timeout_ms
from corral.envd.httpio import BodyTooLarge, Request
from corral.guest.users import User, lookup_user, resolve_path
from corral.wire.framing import (
    FLAG_END_STREAM, MAX_MESSAGE_BYTES, STREAM_CONTENT_TYPE, UNARY_CONTENT_TYPE, ConnectError,
    EnvelopeReader, end_stream_envelope, loads_message, message_envelope,
)
from corral.wire.handoff import EnvdConfig

DEFAULT_KEEPALIVE_SECONDS = 90.0

Json = dict[str, Any]


class Call:
    """One RPC or HTTP request, with lazily resolved caller identity."""

    def __init__(self, config: EnvdConfig, req: Request, username: str | None = None) -> None:
        self.config = config
        self.req = req
        self._username = username
        self._user: User | None = None

    @property
    def user(self) -> User:
        if self._user is None:
            name = self._username or basic_username(self.req.headers.get("authorization"))
            self._user = lookup_user(name or self.config.default_user)
        return self._user

    def path(self, raw: str) -> str:
        return resolve_path(raw, self.user, self.config.default_workdir)

    def keepalive(self) -> float:
        raw = self.req.headers.get("keepalive-ping-interval", "")
        try:
            value = float(raw)
        except ValueError:
            return DEFAULT_KEEPALIVE_SECONDS
        return value if 0 < value <= 24 * 3600 else DEFAULT_KEEPALIVE_SECONDS

    def timeout(self) -> float | None:
        return parse_timeout_ms(self.req.headers.get("connect-timeout-ms"))


Unary = Callable[[Call, Json], Awaitable[Json]]
ServerStream = Callable[[Call, Json], AsyncIterator[Json]]


class ClientStream:
    """The receiving side of one client-streaming call: each message, then the reply."""

    async def message(self, msg: Json) -> None:
        raise NotImplementedError


def content_type(req: Request) -> str:
    return req.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def check_identity_encoding(req: Request, *names: str) -> None:
    for name in names:
        value = req.headers.get(name, "identity").strip().lower()
        if value not in ("identity", ""):
            raise ConnectError("unimplemented", f"{name} {value!r} is not supported")


async def _wrong_content_type(req: Request, expected: str) -> None:
    await req.respond_json(415, {"code": "unknown", "message": f"expected content-type {expected}"})


async def serve_unary(req: Request, config: EnvdConfig, handler: Unary) -> None:
    try:
        if content_type(req) != UNARY_CONTENT_TYPE:
            return await _wrong_content_type(req, UNARY_CONTENT_TYPE)
        check_identity_encoding(req, "content-encoding")
        call = Call(config, req)
        timeout = call.timeout()
        try:
            body = await req.read_body(MAX_MESSAGE_BYTES)
        except BodyTooLarge:
            raise ConnectError("resource_exhausted", "request message too large") from None
        msg = loads_message(body)
        try:
            result = await asyncio.wait_for(handler(call, msg), timeout)
        except asyncio.TimeoutError:
            raise ConnectError("deadline_exceeded", "the call exceeded its Connect-Timeout-Ms") from None
        await req.respond_json(200, result)
    except ConnectError as exc:
        await req.respond_json(exc.http_status, exc.to_json())


async def _read_single_envelope(req: Request) -> Json:
    reader = EnvelopeReader()
    messages: list[bytes] = []
    received = 0
    async for chunk in req.iter_body():
        received += len(chunk)
        if received > MAX_MESSAGE_BYTES + 64:
            raise ConnectError("resource_exhausted", "request message too large")
        for flags, payload in reader.feed(chunk):
            if flags & FLAG_END_STREAM:
                continue
            messages.append(payload)
    if reader.pending or len(messages) != 1:
        raise ConnectError("invalid_argument", "a server-streaming call needs exactly one request message")
    return loads_message(messages[0])


async def serve_server_stream(req: Request, config: EnvdConfig, handler: ServerStream) -> None:
    if content_type(req) != STREAM_CONTENT_TYPE:
        return await _wrong_content_type(req, STREAM_CONTENT_TYPE)
    error: ConnectError | None = None
    pump: asyncio.Task[None] | None = None
    gone: asyncio.Task[None] | None = None
    try:
        # Read the whole request before answering: the SDK's HTTP client (hyper) stops
        # sending a chunked request body once response headers arrive.
        try:
            check_identity_encoding(req, "connect-content-encoding")
            call = Call(config, req)
            msg = await _read_single_envelope(req)
        finally:
            await req.start_response(200, [("content-type", STREAM_CONTENT_TYPE)])

        async def run() -> None:
            async for message in handler(call, msg):
                await req.send_body(message_envelope(message), True)

        pump = asyncio.ensure_future(run())
        gone = asyncio.ensure_future(req.wait_disconnect())
        await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not pump.done():
            pump.cancel()  # the client went away; the process (if any) keeps running
            await asyncio.gather(pump, return_exceptions=True)
            return
        pump.result()
    except ConnectError as exc:
        error = exc
    finally:
        for task in (pump, gone):
            if task is not None and not task.done():
                task.cancel()
    await req.send_body(end_stream_envelope(error), False)


async def serve_client_stream(req: Request, receiver: ClientStream) -> None:
    """Every request message to `receiver`; then one empty reply, or the error that stopped it."""
    if content_type(req) != STREAM_CONTENT_TYPE:
        return await _wrong_content_type(req, STREAM_CONTENT_TYPE)
    error: ConnectError | None = None
    try:
        check_identity_encoding(req, "connect-content-encoding")
        reader = EnvelopeReader()
        async for chunk in req.iter_body():
            for flags, payload in reader.feed(chunk):
                if flags & FLAG_END_STREAM:
                    continue
                await receiver.message(loads_message(payload))
        if reader.pending:
            raise ConnectError("invalid_argument", "truncated envelope")
    except ConnectError as exc:
        error = exc
    await req.start_response(200, [("content-type", STREAM_CONTENT_TYPE)])
    body = (message_envelope({}) if error is None else b"") + end_stream_envelope(error)
    await req.send_body(body, False)
