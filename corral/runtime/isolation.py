"""Which isolation tier a sandbox runs in: the server's default, the template's minimum, the
request's choice, ordered by strength.

A request may *raise* isolation above the template's and the server's minimum, never lower it:
a template that declares ``isolation = "gvisor"`` runs untrusted analysis and must not be started
in a weaker tier because a client asked. Asking for less is refused (400) with the reason, not
silently upgraded, so a client learns what it gets.
"""

from __future__ import annotations

from corral.config import ISOLATION_LEVELS
from corral.errors import InvalidRequest

# Weakest first. "microvm" is listed so that a template asking for it is refused with a clear
# message on a host that cannot run it, instead of an unknown-name error.
LEVELS: tuple[str, ...] = ISOLATION_LEVELS
METADATA_KEY = "corral.isolation"


class IsolationError(InvalidRequest):
    """An isolation choice that is unknown, unavailable here, or below the minimum (400)."""


def strength(name: str) -> int:
    try:
        return LEVELS.index(name)
    except ValueError:
        raise IsolationError(f"unknown isolation tier {name!r} (known: {', '.join(LEVELS)})") from None


def validate(name: str, available: tuple[str, ...] | list[str], where: str) -> str:
    strength(name)
    if name not in available:
        raise IsolationError(f"{where} asks for isolation {name!r}, which this server does not "
                             f"run (available: {', '.join(available)})")
    return name


def choose(server_default: str, template_minimum: str | None, requested: str | None,
           available: tuple[str, ...] | list[str]) -> str:
    """The tier for one sandbox.

    The floor is the stronger of the server's default and the template's minimum; a request
    may name that tier or a stronger one.
    """
    floor = validate(server_default, available, "the server's default")
    floor_from = "the server's default"
    if template_minimum:
        strength(template_minimum)
        if strength(template_minimum) > strength(floor):
            floor, floor_from = template_minimum, "the template"
    if requested is None or requested == "":
        return validate(floor, available, floor_from)
    strength(requested)
    if strength(requested) < strength(floor):
        raise IsolationError(f"isolation {requested!r} is weaker than {floor!r}, the minimum set "
                             f"by {floor_from}; a request may raise isolation, never lower it")
    return validate(requested, available, "the request")


def requested_isolation(extension: object, metadata: dict[str, str] | None) -> str | None:
    """The request's choice: the create body's corral extension wins over the metadata key
    (the official SDKs can only send metadata). Both given and different is an error."""
    a = extension if isinstance(extension, str) and extension else None
    b = (metadata or {}).get(METADATA_KEY) or None
    if extension is not None and not isinstance(extension, str):
        raise IsolationError("isolation must be a string")
    if a and b and a != b:
        raise IsolationError(f"isolation {a!r} in the body and {b!r} in metadata disagree")
    return a or b
