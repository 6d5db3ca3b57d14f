"""E2B's volume content API (the `Volume` class's file operations) over a volume's image.

Every operation runs in its own root helper process (`corral.runtime.namespace.volume_files`,
started by module name: the lifecycle never mounts anything itself), which mounts the image in a
private mount namespace, chroots into it and answers one JSON line. So the server process never
resolves a path inside a volume: a sandbox's symlinks and `..` stay inside the volume. A read
streams the file's bytes after that line; a write streams the request body into the helper.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from corral.errors import CorralError

HELPER = "corral.runtime.namespace.volume_files"
CHUNK = 1 << 16


class VolumeContentError(CorralError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _start(image: Path, op: dict[str, Any], stdin: bool) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-m", HELPER, json.dumps({**op, "image": str(image)}),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _header(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if not line:
        err = (await proc.stderr.read()).decode(errors="replace").strip() if proc.stderr else ""
        await proc.wait()
        raise VolumeContentError(500, f"volume operation failed: {err.splitlines()[-1] if err else 'no answer'}")
    head = json.loads(line)
    if not head.get("ok"):
        await proc.wait()
        raise VolumeContentError(int(head.get("status", 500)), str(head.get("message", "volume operation failed")))
    return head


async def call(image: Path, op: dict[str, Any], body: AsyncIterator[bytes] | None = None) -> Any:
    """Run one operation (not `read`); return its result (an entry, a listing, or None)."""
    proc = await _start(image, op, stdin=body is not None)
    try:
        if body is not None:
            assert proc.stdin is not None
            try:
                async for chunk in body:
                    proc.stdin.write(chunk)
                    await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass    # the helper refused the write already; its answer says why
            finally:
                proc.stdin.close()
        head = await _header(proc)
        await proc.wait()
        return head.get("result")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read(image: Path, path: str) -> tuple[int, AsyncIterator[bytes]]:
    """Open a regular file; return its size and an iterator over its bytes."""
    proc = await _start(image, {"op": "read", "path": path}, stdin=False)
    try:
        head = await _header(proc)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise

    async def stream() -> AsyncIterator[bytes]:
        assert proc.stdout is not None
        try:
            while chunk := await proc.stdout.read(CHUNK):
                yield chunk
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    return int(head.get("size", 0)), stream()
