"""Headless Debian Chromium through Playwright, as a person sees the page, and what a screenshot
must show to count as "the results are on screen"."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
BACKGROUND = (0xF3, 0xF4, 0xF7)  # the page's --bg
ACCENT = (0x3A, 0x5B, 0xD9)      # rank numbers and score bars


@contextmanager
def chromium_page(*, http_errors_expected: bool = False) -> Iterator[object]:
    """A page in headless Chromium; on leaving, the page must have reported no script error, no
    CSP refusal and (unless the test provokes them) no failed request."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (the Makefile's APT_PACKAGES installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def on_console(msg) -> None:  # type: ignore[no-untyped-def]
                if msg.type == "error" and not (http_errors_expected and msg.text.startswith("Failed to load resource")):
                    errors.append(msg.text)

            page.on("console", on_console)
            yield page
            assert not errors, f"the page reported errors: {errors}"  # a script error, a CSP refusal
        finally:
            browser.close()


def region_stats(png: bytes, box: dict[str, float]) -> dict[str, float]:
    """Shares of a screenshot region's pixels: unlike the page background, dark (text), and the
    accent colour (rank numbers, score bars)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    # The part of the box on screen: a region taller than the viewport is cut at its bottom edge.
    left, top = max(0, int(box["x"])), max(0, int(box["y"]))
    right, bottom = min(image.width, int(box["x"] + box["width"])), min(image.height, int(box["y"] + box["height"]))
    assert right > left and bottom > top, f"the region {box} is off screen"
    pixels = list(image.crop((left, top, right, bottom)).get_flattened_data())
    n = len(pixels) or 1

    def near(a: tuple[int, ...], b: tuple[int, ...], tol: int) -> bool:
        return all(abs(x - y) <= tol for x, y in zip(a, b))

    return {
        "pixels": n,
        "not_background": sum(not near(p, BACKGROUND, 6) for p in pixels) / n,
        "dark": sum(sum(p) < 3 * 110 for p in pixels) / n,
        "accent": sum(near(p, ACCENT, 40) for p in pixels) / n,
    }
