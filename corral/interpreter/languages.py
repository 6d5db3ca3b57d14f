"""Language names as the SDK sends them, and which kernel serves each.

The SDK passes any string; E2B lower-cases it, maps `js`/`ts` to their long names and treats an
empty or missing language as Python. TypeScript shares the JavaScript runtime (cells are
transpiled first), but keeps its own contexts: a TypeScript cell must never run as plain JS.
"""

from __future__ import annotations

from corral.errors import InvalidRequest

PYTHON = "python"
JAVASCRIPT = "javascript"
TYPESCRIPT = "typescript"
R = "r"
JAVA = "java"
BASH = "bash"

LANGUAGES = (PYTHON, JAVASCRIPT, TYPESCRIPT, R, JAVA, BASH)

_ALIASES = {
    "": PYTHON, "python": PYTHON, "python3": PYTHON, "py": PYTHON,
    "js": JAVASCRIPT, "javascript": JAVASCRIPT, "node": JAVASCRIPT,
    "ts": TYPESCRIPT, "typescript": TYPESCRIPT,
    "r": R,
    "java": JAVA,
    "bash": BASH, "sh": BASH, "shell": BASH,
}


class UnknownLanguage(InvalidRequest):
    """The requested language has no kernel here."""


def normalize(language: object) -> str:
    """Canonical language name for an SDK value; None and '' mean Python."""
    if language is None:
        return PYTHON
    if not isinstance(language, str):
        raise UnknownLanguage(f"language must be a string, got {type(language).__name__}")
    key = language.strip().lower()
    try:
        return _ALIASES[key]
    except KeyError:
        supported = ", ".join(LANGUAGES)
        raise UnknownLanguage(f"unsupported language {language!r}; supported: {supported}") from None
