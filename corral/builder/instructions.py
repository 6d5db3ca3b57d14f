"""The parsed form of a Dockerfile: one `Instruction` per logical line, with where it came from.

Kept apart from the parser so that the builder, the cache keys and the tests speak about steps
without caring how the text was split.
"""

from __future__ import annotations

from dataclasses import dataclass

# What corral builds. Anything else is refused with the line number (see parser.py).
SUPPORTED = (
    "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "LABEL", "CMD", "ENTRYPOINT",
    "EXPOSE", "SHELL",
)
# Accepted but meaningless for a sandbox (no healthcheck loop, no volumes, no signals).
IGNORED = ("EXPOSE", "MAINTAINER", "STOPSIGNAL", "HEALTHCHECK", "VOLUME")


@dataclass(frozen=True)
class Instruction:
    keyword: str                 # upper case, e.g. "RUN"
    args: tuple[str, ...]        # exec form: the JSON array; shell form: one string
    exec_form: bool              # written as a JSON array
    flags: tuple[tuple[str, str], ...]  # --from=x, --chown=u:g ... (name, value)
    line: int                    # 1-based line of the instruction's first line
    text: str                    # the logical line as written (continuations joined)

    def flag(self, name: str) -> str | None:
        for key, value in self.flags:
            if key == name:
                return value
        return None

    def describe(self) -> str:
        shown = self.text if len(self.text) <= 100 else self.text[:97] + "..."
        return f"line {self.line}: {shown}"
