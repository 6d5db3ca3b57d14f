"""Template names, checked before they ever become a path.

A name is joined to the store root to find a template on disk, so it is the one piece of user
input that could walk the store out of its directory. The pattern allows no separator, no
leading dot (which also keeps the store's private `.build-*`/`.trash` entries unreachable) and
nothing that a shell or a URL would treat specially.
"""

from __future__ import annotations

import re

from corral.errors import InvalidRequest

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


class TemplateNameError(InvalidRequest):
    """A template name or alias that can never be valid; the message says why."""


def check_name(name: object) -> str:
    """Return `name` if it is a valid template name or alias, else raise TemplateNameError."""
    if not isinstance(name, str):
        raise TemplateNameError(f"template name must be a string, not {type(name).__name__}")
    # fullmatch, not match + `$`: `$` would also accept a trailing newline.
    if NAME_PATTERN.fullmatch(name) is None:
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise TemplateNameError(
            f"invalid template name {shown!r}: use 1-63 characters from a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return name
