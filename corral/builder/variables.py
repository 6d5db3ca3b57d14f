"""`$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}` in Dockerfile arguments.

Docker expands build variables in the instructions that take paths and values (ENV, ARG,
WORKDIR, USER, COPY, ADD, LABEL, FROM) but not in RUN/CMD, whose shell expands them at run
time from the environment we pass. Doing the expansion ourselves, rather than through a shell on
the host, means a Dockerfile can never make the host run anything while being read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from corral.errors import InvalidRequest

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATTERN = re.compile(
    r"\\(?P<escaped>\$)"
    rf"|\$\{{(?P<braced>{_NAME})(?:(?P<op>:[-+])(?P<word>[^}}]*))?\}}"
    rf"|\$(?P<plain>{_NAME})"
)


class SubstitutionError(InvalidRequest):
    """A `${...}` that is not one of the supported forms."""


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Replace variable references in `text`; unknown variables become empty, as in Docker."""
    if "${" in text and not _balanced(text):
        raise SubstitutionError(f"unterminated or unsupported ${{...}} in {text!r}")

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        value = variables.get(name, "")
        op = match.group("op")
        if op == ":-":
            return value if value else expand(match.group("word"), variables)
        if op == ":+":
            return expand(match.group("word"), variables) if value else ""
        return value

    return _PATTERN.sub(replace, text)


def _balanced(text: str) -> bool:
    """Every `${` must be a form `_PATTERN` understands (`${1}` or `${a/b}` are refused)."""
    stripped = _PATTERN.sub("", text.replace("\\$", ""))
    return "${" not in stripped
