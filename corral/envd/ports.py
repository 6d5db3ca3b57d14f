"""Exposed ports: raw tunnels from the server to TCP services inside the sandbox.

The server reaches `{port}-{sandboxId}.{domain}` (or the E2B port headers) through a second unix
socket, `ports.sock`, that only the host side can open. Each connection starts with an HTTP
request whose `E2b-Sandbox-Port` header names the port; the daemon, which lives in the sandbox's
network namespace, connects to that port on the sandbox's own loopback, replays the request head
and then splices bytes both ways without parsing them, so HTTP streaming, keep-alive and
WebSocket upgrades pass through unchanged. One connection serves one port for its whole life.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket

log = logging.getLogger("corral.envd.ports")

MAX_HEAD = 64 * 1024
RELAY_CHUNK = 64 * 1024
HEADER = b"e2b-sandbox-port"


def _port_of(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == HEADER:
            try:
                port = int(value.strip())
            except ValueError:
                return None
            return port if 0 < port < 65536 else None
    return None


async def _fail(writer: asyncio.StreamWriter, status: int, reason: str, message: str) -> None:
    body = json.dumps({"code": status, "message": message}).encode()
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    try:
        await writer.drain()
    except OSError:
        pass
    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        return await _fail(writer, 431, "Request Header Fields Too Large", "request head too large")
    except (asyncio.IncompleteReadError, OSError):
        writer.close()
        return
    port = _port_of(head)
    if port is None:
        return await _fail(writer, 400, "Bad Request", "missing or invalid E2b-Sandbox-Port")
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return await _fail(writer, 502, "Bad Gateway", f"no service is listening on port {port} in the sandbox")
    up_writer.write(head)
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    for w in (up_writer, writer):
        w.close()


async def serve(sock: socket.socket) -> asyncio.AbstractServer:
    return await asyncio.start_unix_server(handle, sock=sock, limit=MAX_HEAD)
