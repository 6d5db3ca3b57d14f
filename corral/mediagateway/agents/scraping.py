"""Metadata scraping (§3.3): Playwright drives the desktop template's Chromium against pages
served inside the sandbox, and returns their metadata and a screenshot. With no page given it
scrapes a streaming-style page rendered here from a catalog title (the query picks the title)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..agent import AgentTask
from ..catalog import Title
from ..errors import ConfigError, TransferTooLargeError
from ..security import SandboxSecurityConfig
from .base import AgentRequest, WorkflowAgent
from .schemas import ScrapeOutput

SITE_DIR = "/data/site"
SCREENSHOT = "/output/page.png"


def title_page(t: Title) -> str:
    """A page shaped like a streaming platform's title page (h1, .description, .genre, og: tags)."""
    e = html.escape
    genres = "".join(f'<li class="genre">{e(g)}</li>' for g in t.genres)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(t.title)}</title>"
            f"<meta property='og:title' content='{e(t.title)}'><meta property='og:type' content='video.{e(t.kind or 'movie')}'>"
            f"</head><body><h1>{e(t.title)}</h1><p class='year'>{t.year or ''}</p><ul>{genres}</ul>"
            f"<p class='description'>{e(t.description)}</p><p class='rating'>{round(t.popularity * 10, 1)}/10</p></body></html>")


class ScrapingAgent(WorkflowAgent):
    name = "scraping"
    summary = "Playwright + Chromium in the desktop template: page metadata and a screenshot"
    instructions = ("Serve site_dir on 127.0.0.1:port inside the sandbox, open each page with Playwright (Chromium "
                    "at /usr/bin/chromium via desktop.browser, headless), read h1, .description, .genre items, .year, "
                    f".rating and og: meta tags, save a screenshot of the first page to {SCREENSHOT}.")
    environment = "Python 3.11, Playwright, Debian Chromium, Xvfb (desktop template, desktop.py helpers); no network."
    result_schema = ScrapeOutput
    artifacts = (SCREENSHOT,)
    security = SandboxSecurityConfig(memory_mb=2048, timeout_seconds=120)

    def pages(self, request: AgentRequest) -> dict[str, bytes]:
        if request.files:
            out = {}
            for p in map(Path, request.files):
                if not p.is_file():
                    raise ConfigError("file", f"{p} is not a file")
                if p.stat().st_size > self.security_config.max_upload_bytes:
                    raise TransferTooLargeError("upload", str(p), p.stat().st_size, self.security_config.max_upload_bytes)
                safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in p.name)
                out[safe if safe.endswith((".html", ".htm")) else safe + ".html"] = p.read_bytes()
            return out
        q = (request.query or "").strip().lower()
        chosen = next((t for t in self.catalog.titles if q and q in t.title.lower()), self.catalog.titles[0])
        return {"title.html": title_page(chosen).encode()}

    def build_task(self, request: AgentRequest) -> AgentTask:
        pages = self.pages(request)
        return AgentTask(description="scrape title pages", files={f"{SITE_DIR}/{n}": b for n, b in pages.items()},
                         inputs={"site_dir": SITE_DIR, "pages": sorted(pages), "port": 8765})

    def summarize(self, output: Any) -> str:
        return "; ".join(f"{p['title']} ({p.get('year')}): {', '.join(p['genres'])}" for p in output["pages"])
