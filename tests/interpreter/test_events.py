from __future__ import annotations

import json

import pytest

from corral.interpreter import events
from corral.interpreter.languages import UnknownLanguage, normalize


@pytest.mark.parametrize("given,expected", [
    (None, "python"), ("", "python"), ("Python", "python"), ("js", "javascript"),
    ("javascript", "javascript"), ("ts", "typescript"), ("TypeScript", "typescript"),
    ("r", "r"), ("R", "r"), ("java", "java"), ("bash", "bash"),
])
def test_language_names(given, expected) -> None:
    assert normalize(given) == expected


@pytest.mark.parametrize("bad", ["cobol", "python4", 3, ["python"]])
def test_unknown_languages(bad) -> None:
    with pytest.raises(UnknownLanguage):
        normalize(bad)


def test_mime_bundle_to_result_fields() -> None:
    bundle = {mime: f"v-{field}" for mime, field in events.MIME_FIELDS.items()}
    bundle["text/plain"] = "'quoted'"
    bundle["application/x-other"] = "o"
    out = events.result(bundle, True)
    assert out["type"] == "result" and out["is_main_result"] is True
    assert out["text"] == "quoted"
    for mime, field in events.MIME_FIELDS.items():
        if mime != "text/plain":
            assert out[field] == f"v-{field}"
    assert out["extra"] == {"application/x-other": "o"}


def test_absent_fields_are_left_out() -> None:
    out = events.result({"text/plain": "1", "text/html": None}, False)
    assert "html" not in out and "png" not in out


def test_encoding_is_one_line() -> None:
    line = events.encode(events.stream("stdout", "a\nb\r\n\u2028"))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["text"] == "a\nb\r\n\u2028"
