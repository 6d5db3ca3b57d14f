"""How much one MCP tool call may move, and how a larger output is cut.

An MCP client hands every tool result to a language model, whose context is small and costly, and
the sandbox's output is untrusted: a generated `while True: print(...)` must not be able to fill
the server's memory or the model's context. So every output has a cap. Streams (stdout, stderr)
are kept up to their cap and the rest is counted, not stored; a file larger than `read_file`'s cap
is refused before a byte of it is read; content over `write_file`'s cap is refused before a byte
of it is sent. Each cut or refusal names its cap, so the model knows what happened and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KiB = 1024
MiB = 1024 * KiB

MAX_STREAM_BYTES = 64 * KiB
"""stdout and stderr of one run_code / run_command call, each."""

MAX_READ_BYTES = 1 * MiB
"""Largest file read_file returns."""

MAX_WRITE_BYTES = 10 * MiB
"""Largest content write_file accepts (the spec's default `max_upload_bytes`)."""

MAX_LIST_ENTRIES = 1000
"""Entries list_files returns for one directory."""

MAX_RESULT_TEXT = 16 * KiB
"""Text of one run_code display result (a repr, a DataFrame's text form)."""

MAX_CODE_BYTES = 1 * MiB
"""Largest program or command a caller may send."""

MAX_IMAGES = 4
"""PNG results (charts) of one run_code call returned as images; more are listed, not sent."""

MAX_IMAGE_BYTES = 2 * MiB
"""Largest PNG result (base64 text) returned as an image."""


def human(n: int) -> str:
    """A byte count as people say it: 64 KiB, 1 MiB, 123 bytes."""
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} bytes"


@dataclass
class BoundedStream:
    """Collects a stream's chunks up to `limit` bytes (UTF-8) and counts what it drops."""

    limit: int = MAX_STREAM_BYTES
    _parts: list[str] = field(default_factory=list)
    _kept: int = 0
    dropped: int = 0

    def add(self, chunk: str) -> None:
        data = chunk.encode("utf-8", errors="replace")
        room = self.limit - self._kept
        if room <= 0:
            self.dropped += len(data)
            return
        if len(data) > room:
            # Cut on a character boundary: decoding with "ignore" drops a split multi-byte tail.
            self._parts.append(data[:room].decode("utf-8", errors="ignore"))
            self._kept = self.limit
            self.dropped += len(data) - room
            return
        self._parts.append(chunk)
        self._kept += len(data)

    def text(self) -> str:
        out = "".join(self._parts)
        if self.dropped:
            out += f"\n[output truncated: {self.dropped} more bytes not shown; the cap is {human(self.limit)} per stream]"
        return out


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` UTF-8 bytes, with a note when something was cut."""
    stream = BoundedStream(limit)
    stream.add(text)
    return stream.text()
