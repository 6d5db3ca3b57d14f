"""Which Debian mirrors a template is built from: the host's own apt sources for the suite.

Using the host's configuration means a machine behind a local mirror or proxy builds templates
from that mirror too. Only entries for the template's suite and its -updates/-security suites
are taken; other repositories on the host (vendor repos, backports) stay out of the template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]
    signed_by: str | None = None

    def line(self) -> str:
        opts = f"[signed-by={self.signed_by}] " if self.signed_by else ""
        return f"deb {opts}{self.uri} {self.suite} {' '.join(self.components)}"


def _wanted(suite: str, base: str) -> bool:
    return suite in (base, f"{base}-updates", f"{base}-security")


def _one_line(text: str, base: str) -> Iterable[AptSource]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue                                   # deb-src and junk are not needed
        options: dict[str, str] = {}
        match = re.match(r"deb\s+\[([^\]]*)\]\s+(.*)", line)
        rest = line[4:].strip()
        if match:
            for opt in match.group(1).split():
                key, _, value = opt.partition("=")
                options[key.lower()] = value
            rest = match.group(2)
        parts = rest.split()
        if len(parts) < 3 or not _wanted(parts[1], base):
            continue
        yield AptSource(parts[0], parts[1], tuple(parts[2:]), options.get("signed-by") or None)


def _deb822(text: str, base: str) -> Iterable[AptSource]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key:
                fields[key] += "\n" + raw.strip()      # continuation (an inline key, say)
                continue
            key, sep, value = raw.partition(":")
            if not sep:
                key = None
                continue
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        signed_by = fields.get("signed-by") or None
        if signed_by and "\n" in signed_by:
            signed_by = None                           # an inline key cannot go on one line
        components = tuple(fields.get("components", "main").split())
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                if _wanted(suite, base):
                    yield AptSource(uri, suite, components, signed_by)


def host_sources(suite: str, apt_dir: Path = APT_DIR) -> list[AptSource]:
    """The host's apt entries for `suite` (and -updates, -security), in apt's reading order."""
    found: list[AptSource] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        found += _one_line(main.read_text(errors="replace"), suite)
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found += _one_line(path.read_text(errors="replace"), suite)
            elif path.suffix == ".sources":
                found += _deb822(path.read_text(errors="replace"), suite)
    unique: list[AptSource] = []
    for source in found:
        if source not in unique:
            unique.append(source)
    return unique


def render(sources: list[AptSource]) -> str:
    return "".join(s.line() + "\n" for s in sources)
