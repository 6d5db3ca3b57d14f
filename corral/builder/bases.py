"""What a `FROM` line may name, and which corral template each name stands for.

There is no registry to pull images from, so the familiar Docker Hub names map to templates
corral builds itself from Debian's packages. The mapping is honest about versions: Debian
bookworm ships Python 3.11 only, so `python:3.11-slim` maps and `python:3.12-slim` is refused
rather than silently giving 3.11. A name that is already a template in the store is used as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corral.errors import InvalidRequest
from corral.templates.code_interpreter import TEMPLATE_NAME as CODE_INTERPRETER
from corral.templates.names import NAME_PATTERN


class BaseImageError(InvalidRequest):
    """A FROM name corral cannot provide."""


@dataclass(frozen=True)
class Base:
    template: str                 # the corral template the build starts from
    # Commands Docker's image would have that the template lacks, added as a first layer.
    python_aliases: bool = False  # /usr/local/bin/python and pip -> python3, pip3


_DEBIAN = re.compile(r"debian:(bookworm|12)(\.\d+)?(-slim)?")
_PYTHON = re.compile(r"python:(?P<ver>3(?:\.\d+)?)(?:\.\d+)?(?:-slim)?(?:-bookworm)?")
_E2B = re.compile(r"(?:e2bdev|e2b)/(?P<what>code-interpreter|base)(?::[\w.-]+)?")


def resolve(image: str, known_templates: set[str]) -> Base:
    name = image.strip()
    if name.startswith("docker.io/library/"):
        name = name[len("docker.io/library/"):]
    if name in known_templates:
        return Base(name)
    if _DEBIAN.fullmatch(name) or name in ("debian", "debian:latest", "debian:stable", "debian:stable-slim"):
        return Base("base")
    match = _PYTHON.fullmatch(name)
    if match:
        if match.group("ver") not in ("3", "3.11"):
            raise BaseImageError(
                f"FROM {image}: corral builds Python images from Debian bookworm, which has Python 3.11 "
                "only; use python:3.11-slim")
        return Base("base", python_aliases=True)
    match = _E2B.fullmatch(name)
    if match:
        return Base(CODE_INTERPRETER if match.group("what") == "code-interpreter" else "base")
    if NAME_PATTERN.fullmatch(name):
        raise BaseImageError(f"FROM {image}: no template {name!r} in the store (build it first, "
                             "or use debian:bookworm, python:3.11-slim or e2b/code-interpreter)")
    raise BaseImageError(
        f"FROM {image}: corral has no registry to pull from; use a corral template name, "
        "debian:bookworm[-slim], python:3.11[-slim] or e2b/code-interpreter[:tag]")
