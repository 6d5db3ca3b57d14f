"""A streaming multipart/form-data parser for uploads.

Uploads can be a gigabyte, so parts are never held in memory: `feed()` turns whatever bytes
arrived into events (part headers, body bytes, part end) that the caller writes straight to
disk.  Malformed input raises MultipartError, which the HTTP layer reports as 400.
"""

from __future__ import annotations

import urllib.parse
from typing import Iterator, Union

MAX_HEADER_BYTES = 16 * 1024


class MultipartError(ValueError):
    pass


class PartStart:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        disposition = headers.get("content-disposition", "")
        kind, params = parse_header_params(disposition)
        if kind.lower() != "form-data":
            raise MultipartError("part without form-data disposition")
        self.name = params.get("name")
        self.filename = params.get("filename")


class PartData:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class PartEnd:
    pass


Event = Union[PartStart, PartData, PartEnd]


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `form-data; name="file"; filename="/a/b"` honouring quotes and RFC 5987 `*=`."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            current.append(ch)
            quoted = not quoted
        elif ch == ";" and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    kind = items[0].strip()
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    for item in items[1:]:
        key, sep, raw = item.partition("=")
        if not sep:
            continue
        key = key.strip().lower()
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            inner = raw[1:-1]
            out, i = [], 0
            while i < len(inner):
                if inner[i] == "\\" and i + 1 < len(inner):
                    i += 1
                out.append(inner[i])
                i += 1
            raw = "".join(out)
        if key.endswith("*"):
            charset, _, rest = raw.partition("'")
            _lang, _, encoded = rest.partition("'")
            try:
                extended[key[:-1]] = urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                raise MultipartError(f"bad extended parameter {key}") from None
        else:
            params[key] = raw
    params.update(extended)
    return kind, params


class MultipartParser:
    _PREAMBLE, _AFTER_BOUNDARY, _HEADERS, _BODY, _DONE = range(5)

    def __init__(self, boundary: str) -> None:
        if not boundary or len(boundary) > 200:
            raise MultipartError("missing or invalid multipart boundary")
        self._delim = b"\r\n--" + boundary.encode("latin-1")
        # A virtual CRLF lets the first boundary (which has none before it) match the delimiter.
        self._buf = bytearray(b"\r\n")
        self._state = self._PREAMBLE

    @property
    def done(self) -> bool:
        return self._state == self._DONE

    def feed(self, data: bytes) -> Iterator[Event]:
        self._buf += data
        while True:
            if self._state == self._PREAMBLE:
                idx = self._buf.find(self._delim)
                if idx < 0:
                    keep = len(self._delim) - 1
                    if len(self._buf) > keep:
                        del self._buf[: len(self._buf) - keep]
                    return
                del self._buf[: idx + len(self._delim)]
                self._state = self._AFTER_BOUNDARY
            elif self._state == self._AFTER_BOUNDARY:
                stripped = self._buf.lstrip(b" \t")  # transport padding is allowed here
                if len(stripped) < 2:
                    return
                self._buf = bytearray(stripped)
                if self._buf[:2] == b"--":
                    self._state = self._DONE
                    self._buf.clear()
                    return
                if self._buf[:2] != b"\r\n":
                    raise MultipartError("malformed boundary line")
                del self._buf[:2]
                self._state = self._HEADERS
            elif self._state == self._HEADERS:
                if self._buf.startswith(b"\r\n"):
                    idx = -2  # a part with no headers at all
                else:
                    idx = self._buf.find(b"\r\n\r\n")
                if idx == -1:
                    if len(self._buf) > MAX_HEADER_BYTES:
                        raise MultipartError("part headers too large")
                    return
                if idx > MAX_HEADER_BYTES:
                    raise MultipartError("part headers too large")
                block = bytes(self._buf[: max(idx, 0)])
                del self._buf[: idx + 4]
                headers: dict[str, str] = {}
                for line in block.split(b"\r\n"):
                    if not line:
                        continue
                    name, sep, value = line.partition(b":")
                    if not sep:
                        raise MultipartError("malformed part header")
                    headers[name.decode("latin-1").strip().lower()] = value.decode("utf-8", "replace").strip()
                self._state = self._BODY
                yield PartStart(headers)
            elif self._state == self._BODY:
                idx = self._buf.find(self._delim)
                if idx < 0:
                    safe = len(self._buf) - (len(self._delim) - 1)
                    if safe > 0:
                        chunk = bytes(self._buf[:safe])
                        del self._buf[:safe]
                        yield PartData(chunk)
                    return
                if idx:
                    yield PartData(bytes(self._buf[:idx]))
                del self._buf[: idx + len(self._delim)]
                self._state = self._AFTER_BOUNDARY
                yield PartEnd()
            else:
                self._buf.clear()
                return

    def close(self) -> None:
        if self._state != self._DONE:
            raise MultipartError("multipart body ended before its closing boundary")
