"""What the SDK's `Template()` builder sends to start a build, checked before any work starts.

The body of `POST /v2/templates/{id}/builds/{buildID}` (E2B's `TemplateBuildStartV2`) names a base
(`fromImage` or `fromTemplate`), a list of steps (`COPY`, `ENV`, `RUN`, `USER`, `WORKDIR`, each
with positional `args`) and optional start/ready commands. Every field is validated here and a bad
one is refused with a message that names the step, so a typo never turns into a half-run build.
The steps become a Dockerfile for corral's builder in `dockerfile.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from corral.errors import InvalidRequest

STEP_TYPES = ("COPY", "ENV", "RUN", "USER", "WORKDIR")
MAX_STEPS = 500
MAX_ARG_CHARS = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?(:[a-z_][a-z0-9_-]{0,31}\$?)?|[0-9]{1,10}(:[0-9]{1,10})?")
_MODE = re.compile(r"0?[0-7]{3,4}")
FILES_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Step:
    index: int                    # 1-based, as the SDK counts its steps (0 is the base)
    type: str
    args: tuple[str, ...]
    force: bool = False
    files_hash: str | None = None


@dataclass(frozen=True)
class BuildSpec:
    from_image: str | None
    from_template: str | None
    steps: tuple[Step, ...] = ()
    force: bool = False
    start_cmd: str | None = None
    ready_cmd: str | None = None
    hashes: tuple[str, ...] = field(default=())     # every filesHash a COPY step needs


def _fail(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _text(value: object, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(f"{what} must be a string")
    if "\x00" in value:
        raise _fail(f"{what} contains a NUL byte")
    if len(value) > MAX_ARG_CHARS:
        raise _fail(f"{what} is longer than {MAX_ARG_CHARS} characters")
    if not allow_empty and not value.strip():
        raise _fail(f"{what} is empty")
    return value


def _one_line(value: str, what: str) -> str:
    if "\n" in value or "\r" in value:
        raise _fail(f"{what} must be a single line")
    return value


def _check_user(value: str, what: str) -> str:
    if not _USER.fullmatch(value):
        raise _fail(f"{what} {value!r} is not a user name (or user:group)")
    return value


def _check_copy(step: Step) -> None:
    where = f"step {step.index} (COPY)"
    if len(step.args) not in (2, 3, 4):
        raise _fail(f"{where}: expected [src, dest, user, mode]")
    src, dest = step.args[0], step.args[1]
    for value, what in ((src, "source"), (dest, "destination")):
        _one_line(_text(value, f"{where}: {what}"), f"{where}: {what}")
        if "$" in value:
            raise _fail(f"{where}: {what} {value!r} contains '$', which corral's builder would expand")
    parts = src.replace("\\", "/").split("/")
    if src.startswith("/") or ".." in parts:
        raise _fail(f"{where}: source {src!r} must be a relative path inside the build context")
    user = step.args[2] if len(step.args) > 2 else ""
    mode = step.args[3] if len(step.args) > 3 else ""
    if user:
        _check_user(_text(user, f"{where}: user"), f"{where}: user")
    if mode and not _MODE.fullmatch(_text(mode, f"{where}: mode")):
        raise _fail(f"{where}: mode {mode!r} is not an octal permission such as 0644")
    if step.files_hash is None or not FILES_HASH.fullmatch(step.files_hash):
        raise _fail(f"{where}: filesHash must be the 64-character hex hash the SDK computed")


def _check_step(step: Step) -> None:
    where = f"step {step.index} ({step.type})"
    if step.type == "COPY":
        _check_copy(step)
        return
    if step.type == "ENV":
        if not step.args or len(step.args) % 2:
            raise _fail(f"{where}: expected name/value pairs")
        for name, value in zip(step.args[0::2], step.args[1::2]):
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                raise _fail(f"{where}: {name!r} is not an environment variable name")
            _one_line(_text(value, f"{where}: value of {name}", allow_empty=True), f"{where}: value of {name}")
        return
    if step.type == "RUN":
        if len(step.args) not in (1, 2):
            raise _fail(f"{where}: expected [command] or [command, user]")
        _text(step.args[0], f"{where}: command")
        if len(step.args) == 2 and step.args[1]:
            _check_user(_text(step.args[1], f"{where}: user"), f"{where}: user")
        return
    if len(step.args) != 1:
        raise _fail(f"{where}: expected exactly one argument")
    value = _one_line(_text(step.args[0], f"{where}: argument"), f"{where}: argument")
    if step.type == "USER":
        _check_user(value, where)
    elif "$" in value:
        raise _fail(f"{where}: {value!r} contains '$', which corral's builder would expand")


def parse_build(body: Any) -> BuildSpec:
    """`TemplateBuildStartV2` JSON -> a checked BuildSpec (InvalidRequest on anything wrong)."""
    if not isinstance(body, dict):
        raise _fail("request body must be a JSON object")
    if body.get("fromImageRegistry") not in (None, {}):
        raise _fail("fromImageRegistry: corral pulls no images, so registry credentials cannot be used; "
                    "build from debian:bookworm, python:3.11, e2bdev/base, e2bdev/code-interpreter or a "
                    "corral template name")
    from_image = body.get("fromImage")
    from_template = body.get("fromTemplate")
    if (from_image is None) == (from_template is None):
        raise _fail("exactly one of fromImage and fromTemplate is required")
    if from_image is not None:
        _one_line(_text(from_image, "fromImage"), "fromImage")
    if from_template is not None:
        _one_line(_text(from_template, "fromTemplate"), "fromTemplate")
    raw_steps = body.get("steps") or []
    if not isinstance(raw_steps, list):
        raise _fail("steps must be a list")
    if len(raw_steps) > MAX_STEPS:
        raise _fail(f"a template may have at most {MAX_STEPS} steps")
    steps = []
    for i, raw in enumerate(raw_steps, start=1):
        if not isinstance(raw, dict):
            raise _fail(f"step {i} must be an object")
        kind = raw.get("type")
        if kind not in STEP_TYPES:
            raise _fail(f"step {i}: type {kind!r} is not supported (supported: {', '.join(STEP_TYPES)})")
        args = raw.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise _fail(f"step {i} ({kind}): args must be a list of strings")
        files_hash = raw.get("filesHash")
        if files_hash is not None and not isinstance(files_hash, str):
            raise _fail(f"step {i} ({kind}): filesHash must be a string")
        step = Step(i, kind, tuple(args), bool(raw.get("force")), files_hash)
        _check_step(step)
        steps.append(step)
    start = body.get("startCmd")
    ready = body.get("readyCmd")
    for value, what in ((start, "startCmd"), (ready, "readyCmd")):
        if value is not None:
            _text(value, what)
    hashes = tuple(dict.fromkeys(s.files_hash for s in steps if s.type == "COPY" and s.files_hash))
    return BuildSpec(from_image, from_template, tuple(steps), bool(body.get("force")), start, ready, hashes)
