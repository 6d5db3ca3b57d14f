"""Desktop helpers inside the sandbox: the screen, mouse, keyboard, and a Playwright browser.

Everything runs on the sandbox's own Xvfb display; Chromium is Debian's (/usr/bin/chromium),
launched by Playwright with `executable_path`, so nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess

DISPLAY = os.environ.get("DISPLAY", ":0")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"]


def start() -> None:
    """Start Xvfb and the window manager (no-op when already running)."""
    subprocess.run(["/usr/local/bin/start-desktop"], check=True, env={**os.environ, "DISPLAY": DISPLAY})


def _xdotool(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, env={**os.environ, "DISPLAY": DISPLAY})


def screenshot(path: str = "/tmp/screen.png") -> str:
    """PNG of the whole screen."""
    subprocess.run(["import", "-window", "root", path], check=True, env={**os.environ, "DISPLAY": DISPLAY})
    return path


def move_mouse(x: int, y: int) -> None:
    _xdotool("mousemove", str(int(x)), str(int(y)))


def click(x: int, y: int, button: int = 1) -> None:
    _xdotool("mousemove", str(int(x)), str(int(y)), "click", str(int(button)))


def type_text(text: str) -> None:
    _xdotool("type", "--delay", "10", "--", text)


def press(keys: str) -> None:
    """e.g. 'ctrl+l', 'Return'."""
    _xdotool("key", "--", keys)


def browser(playwright, headless: bool = False):
    """A Chromium browser on the sandbox's display (headless=True needs no display)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=headless, args=CHROMIUM_ARGS,
                                      env={**os.environ, "DISPLAY": DISPLAY})


def page_title_and_screenshot(url: str, png: str = "/tmp/page.png", headless: bool = True) -> str:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = browser(p, headless=headless)
        try:
            page = b.new_page()
            page.goto(url)
            page.screenshot(path=png)
            return page.title()
        finally:
            b.close()
