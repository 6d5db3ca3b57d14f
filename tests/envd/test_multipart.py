"""The streaming multipart parser: chunking, filenames with full paths, malformed bodies."""

from __future__ import annotations

import pytest

from corral.envd.multipart import MultipartError, MultipartParser, PartData, PartEnd, PartStart, parse_header_params


def _parse(body: bytes, boundary: str, step: int) -> list[tuple[str | None, str | None, bytes]]:
    parser = MultipartParser(boundary)
    parts: list[tuple[str | None, str | None, bytes]] = []
    for i in range(0, len(body), step):
        for ev in parser.feed(body[i:i + step]):
            if isinstance(ev, PartStart):
                parts.append((ev.name, ev.filename, b""))
            elif isinstance(ev, PartData):
                name, fn, data = parts[-1]
                parts[-1] = (name, fn, data + ev.data)
            else:
                assert isinstance(ev, PartEnd)
    parser.close()
    return parts


BODY = (b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/a b.txt\"\r\n"
        b"Content-Type: text/plain\r\n\r\nline1\r\n--Xy-partial\r\n\r\n--XyZ\r\n"
        b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%2Ftmp%2F%C3%A9.bin\r\n\r\n"
        b"\r\n--XyZ--\r\nepilogue")


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 10_000])
def test_parts_survive_any_chunking(step: int) -> None:
    assert _parse(BODY, "XyZ", step) == [
        ("file", "/home/user/a b.txt", b"line1\r\n--Xy-partial\r\n"),
        ("file", "/tmp/é.bin", b""),
    ]


def test_header_params_with_quotes_and_escapes() -> None:
    kind, params = parse_header_params('form-data; name="file"; filename="/a/\\"q\\";b.txt"')
    assert kind == "form-data" and params == {"name": "file", "filename": '/a/"q";b.txt'}
    assert parse_header_params("multipart/form-data; boundary=abc")[1]["boundary"] == "abc"


@pytest.mark.parametrize("body", [
    b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunterminated",
    b"--b\r\nno-colon-header\r\n\r\nx\r\n--b--",
    b"--bXX",
    b"",
])
def test_malformed_bodies_raise(body: bytes) -> None:
    parser = MultipartParser("b")
    with pytest.raises(MultipartError):
        list(parser.feed(body))
        parser.close()


def test_header_block_size_is_bounded() -> None:
    parser = MultipartParser("b")
    with pytest.raises(MultipartError):
        list(parser.feed(b"--b\r\nX-Long: " + b"a" * 20_000))


def test_bad_boundary() -> None:
    with pytest.raises(MultipartError):
        MultipartParser("")
