"""Dockerfile text -> `Instruction`s, with errors that name the line.

Only the syntax corral can build is accepted: no parser directives other than comments, no
heredocs, no `RUN --mount`. A Dockerfile that needs more fails here, before any work starts,
with the line that asked for it.
"""

from __future__ import annotations

import json
import re
import shlex

from corral.errors import InvalidRequest
from corral.builder.instructions import IGNORED, SUPPORTED, Instruction

MAX_DOCKERFILE_BYTES = 1 << 20
_FLAG = re.compile(r"--([a-z][a-z-]*)=(\S*)")
_ALLOWED_FLAGS = {
    "FROM": {"platform"},
    "COPY": {"chown", "chmod"},
    "ADD": {"chown", "chmod"},
}


class DockerfileError(InvalidRequest):
    """The Dockerfile cannot be built; the message starts with the line it concerns."""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and current):
            continue                     # comments and blank lines inside a continuation vanish
        if not stripped:
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].rstrip())
            continue
        current.append(stripped)
        out.append((start, " ".join(p for p in current if p)))
        current = []
    if current:
        out.append((start, " ".join(p for p in current if p)))
    return out


def _pairs(rest: str, line: int, keyword: str) -> tuple[str, ...]:
    """`k=v k2="v 2"` (or the legacy `k v with spaces`) -> (k, v, k2, v2 ...)."""
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as exc:
        raise DockerfileError(f"line {line}: {keyword}: {exc}") from None
    if not words:
        raise DockerfileError(f"line {line}: {keyword} needs at least one name")
    if "=" not in words[0]:
        if keyword == "LABEL" or len(words) < 2:
            raise DockerfileError(f"line {line}: {keyword} expects name=value")
        return (words[0], rest.split(None, 1)[1].strip())   # ENV name value...
    out: list[str] = []
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise DockerfileError(f"line {line}: {keyword}: expected name=value, got {word!r}")
        out += [name, value]
    return tuple(out)


def parse(text: str) -> list[Instruction]:
    if len(text.encode()) > MAX_DOCKERFILE_BYTES:
        raise DockerfileError("Dockerfile is larger than 1 MiB")
    result: list[Instruction] = []
    for line, logical in _logical_lines(text):
        keyword, _, rest = logical.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword not in SUPPORTED and keyword not in IGNORED:
            raise DockerfileError(f"line {line}: {keyword} is not supported by corral's builder "
                                  f"(supported: {', '.join(SUPPORTED)})")
        flags: list[tuple[str, str]] = []
        while rest.startswith("--"):
            match = _FLAG.match(rest)
            if not match or match.group(1) not in _ALLOWED_FLAGS.get(keyword, set()):
                shown = rest.split()[0]
                raise DockerfileError(f"line {line}: {keyword} {shown} is not supported")
            flags.append((match.group(1), match.group(2)))
            rest = rest[match.end():].lstrip()
        if keyword in IGNORED:
            continue
        exec_form = False
        args: tuple[str, ...]
        if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD") and rest.startswith("["):
            try:
                parsed = json.loads(rest)
            except ValueError:
                parsed = None
            if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed):
                exec_form, args = True, tuple(parsed)
            elif keyword in ("SHELL",):
                raise DockerfileError(f"line {line}: SHELL needs a JSON array of strings")
            else:
                args = (rest,)
        elif keyword in ("ENV", "LABEL"):
            args = _pairs(rest, line, keyword)
        elif keyword in ("COPY", "ADD"):
            args = tuple(rest.split())
        else:
            args = (rest,) if rest else ()
        if keyword == "RUN" and rest.lstrip().startswith("<<"):
            raise DockerfileError(f"line {line}: RUN heredocs are not supported")
        if not args and keyword not in ("CMD", "ENTRYPOINT"):
            raise DockerfileError(f"line {line}: {keyword} needs an argument")
        if keyword in ("COPY", "ADD") and len(args) < 2:
            raise DockerfileError(f"line {line}: {keyword} needs a source and a destination")
        if keyword == "SHELL" and not exec_form:
            raise DockerfileError(f"line {line}: SHELL needs a JSON array of strings")
        result.append(Instruction(keyword, args, exec_form, tuple(flags), line, logical))
    if not result:
        raise DockerfileError("the Dockerfile has no instructions")
    froms = [i for i in result if i.keyword == "FROM"]
    first = next(i for i in result if i.keyword != "ARG")
    if first.keyword != "FROM":
        raise DockerfileError(f"line {first.line}: the first instruction must be FROM (or ARG)")
    if len(froms) > 1:
        raise DockerfileError(f"line {froms[1].line}: multi-stage builds are not supported (one FROM)")
    return result
