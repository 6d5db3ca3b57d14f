"""The unmodified `e2b-desktop` SDK against the `desktop` template, as a person would use it.

The SDK starts Xvfb and XFCE itself, drives them with xdotool, reads the screen with scrot and
xrandr, and streams it with x11vnc behind noVNC on port 6080. Its stream URL is always
`https://{get_host(6080)}/vnc.html`, so the server runs in TLS mode and the client knows only
E2B_DOMAIN and the CA; the page is then opened in headless Chromium through corral's port routing
(HTTP for the page, a WebSocket for VNC) and its screenshot compared with the SDK's own.
The spec's §3.3 scraping code (Playwright + Chromium inside the sandbox) runs in the same template.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TlsServer, start_tls_server, stop_tls_server

pytestmark = pytest.mark.e2e

PIL = pytest.importorskip("PIL.Image")
playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Runs in a child process with only E2B_API_KEY, E2B_DOMAIN and SSL_CERT_FILE set, as a user would.
CLIENT = r'''
import base64, json, sys, time
from e2b import PtySize
from e2b_desktop import Sandbox

out = {}
desk = Sandbox.create(timeout=600)
out["id"] = desk.sandbox_id
try:
    shot = desk.screenshot()
    out["screenshot"] = base64.b64encode(bytes(shot)).decode()
    out["screen_size"] = list(desk.get_screen_size())
    desk.move_mouse(100, 200)
    out["cursor"] = list(desk.get_cursor_position())

    # An editor window, typed into with the SDK's write(); the title gains the modified mark.
    desk.launch("org.xfce.mousepad")
    wid = None
    for _ in range(120):
        try:
            wins = desk.get_application_windows("mousepad")
        except Exception:  # xdotool exits 1 while no window matches
            wins = []
        if wins:
            wid = wins[0]
            break
        time.sleep(0.5)
    assert wid, "mousepad did not open a window"
    desk.commands.run(f"xdotool windowactivate --sync {wid} || true")
    time.sleep(1.0)
    before = bytes(desk.screenshot())
    out["title_before"] = desk.get_window_title(wid)
    desk.write("hello")
    time.sleep(0.5)
    after = bytes(desk.screenshot())
    out["title_after"] = desk.get_window_title(wid)
    out["before"] = base64.b64encode(before).decode()
    out["after"] = base64.b64encode(after).decode()

    desk.stream.start()
    out["stream_url"] = desk.stream.get_url()

    # The spec's §3.3 scraping workflow, against a page served inside the sandbox.
    desk.commands.run("mkdir -p /tmp/site /output && printf '%s' \"<html><body><h1>The Expanse</h1>"
                      "<p class=description>Sci-fi series set in a colonised solar system.</p></body></html>\""
                      " > /tmp/site/index.html")
    desk.commands.run("cd /tmp/site && python3 -m http.server 8765 --bind 127.0.0.1", background=True)
    desk.files.write("/tmp/scrape.py", """
import json
from playwright.sync_api import sync_playwright
url = 'http://127.0.0.1:8765/'
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox'])
    page = browser.new_page()
    for _ in range(50):
        try:
            page.goto(url)
            break
        except Exception:
            page.wait_for_timeout(100)
    title = page.query_selector('h1').inner_text()
    description = page.query_selector('.description').inner_text()
    with open('/output/metadata.json', 'w') as f:
        json.dump({'title': title, 'description': description}, f)
    browser.close()
""")
    desk.commands.run("python3 /tmp/scrape.py", timeout=120)
    out["metadata"] = json.loads(desk.files.read("/output/metadata.json"))

    # The rest of the Sandbox API through e2b_desktop's class (domain-only configuration).
    desk.set_timeout(500)
    out["info_id"] = desk.get_info().sandbox_id
    out["listed"] = desk.sandbox_id in [s.sandbox_id for s in Sandbox.list().next_items()]
    desk.files.write("/home/user/desk.txt", "from the desktop SDK")
    out["file"] = desk.files.read("/home/user/desk.txt")
    out["file_listed"] = "desk.txt" in [e.name for e in desk.files.list("/home/user")]
    bg = desk.commands.run("sleep 30", background=True)
    out["bg_killed"] = desk.commands.kill(bg.pid)
    typed = []
    pty = desk.pty.create(PtySize(rows=24, cols=80), timeout=60)
    desk.pty.send_stdin(pty.pid, b"echo desk-$((6*7))\nexit\n")
    try:
        pty.wait(on_pty=typed.append)
    except Exception:        # the shell's exit code after `exit` is not this check's concern
        pass
    out["pty"] = b"".join(typed).decode(errors="replace")
    try:
        Sandbox.list(api_key="e2b_" + "0" * 40).next_items()
        out["bad_key"] = "accepted"
    except Exception as exc:
        out["bad_key"] = type(exc).__name__
finally:
    print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    srv = start_tls_server(tmp_path_factory.mktemp("desktop"))
    try:
        yield srv
    finally:
        stop_tls_server(srv)


def _image(b64: str):
    import base64
    return PIL.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")


def _mean_abs_diff(a, b) -> float:
    """Mean per-channel difference of two same-size RGB images, 0..255."""
    from PIL import ImageChops, ImageStat
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


@pytest.fixture(scope="module")
def session(tls_server: TlsServer) -> dict:
    env = tls_server.client_env()
    done = subprocess.run([sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=600)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-4000:]
    out = json.loads(lines[-1])
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_screenshot_is_1024x768_png(session: dict) -> None:
    img = _image(session["screenshot"])
    assert img.size == (1024, 768)
    # An XFCE desktop, not a black frame: more than a handful of colours on screen.
    assert len(img.getcolors(maxcolors=1 << 20) or []) > 16


def test_screen_size_and_cursor(session: dict) -> None:
    assert session["screen_size"] == [1024, 768]
    assert session["cursor"] == [100, 200]


def test_typing_into_an_editor_shows_on_screen(session: dict) -> None:
    assert "*" not in session["title_before"] and "*" in session["title_after"], (session["title_before"], session["title_after"])
    before, after = _image(session["before"]), _image(session["after"])
    assert _mean_abs_diff(before, after) > 0.01, "the typed text did not change the screen"


def test_the_rest_of_the_sandbox_api_through_the_desktop_class(session: dict) -> None:
    assert session["info_id"] == session["id"] and session["listed"]
    assert session["file"] == "from the desktop SDK" and session["file_listed"]
    assert session["bg_killed"] is True and "desk-42" in session["pty"]
    assert session["bad_key"] == "AuthenticationException"


def test_spec_scraping_workflow_runs_in_the_desktop_template(session: dict) -> None:
    assert session["metadata"] == {"title": "The Expanse",
                                   "description": "Sci-fi series set in a colonised solar system."}


def test_stream_url_opens_the_desktop_in_a_browser(session: dict, tls_server: TlsServer, tmp_path: Path) -> None:
    port = tls_server.port
    url = session["stream_url"]
    assert url.startswith(f"https://6080-{session['id']}.e2b.localhost:{port}/vnc.html?"), url
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The test's own CA signs the page; the browser is told to accept it, as a user adds a CA.
            page = browser.new_context(ignore_https_errors=True, viewport={"width": 1024, "height": 768}).new_page()
            page.goto(url)
            # noVNC draws the remote screen into a canvas once its WebSocket is connected.
            page.wait_for_function(
                "() => { const c = document.querySelector('#noVNC_container canvas, canvas');"
                " return c && c.width >= 1024 && c.height >= 768; }", timeout=60_000)
            page.wait_for_timeout(1500)
            shot = tmp_path / "stream.png"
            canvas = page.query_selector("#noVNC_container canvas") or page.query_selector("canvas")
            canvas.screenshot(path=str(shot))
        finally:
            browser.close()
    seen = PIL.open(shot).convert("RGB").resize((1024, 768))
    desktop = _image(session["after"])
    # The browser shows the sandbox's desktop: the picture matches the SDK's own screenshot far
    # better than a blank or a different frame would.
    blank = PIL.new("RGB", (1024, 768), (0, 0, 0))
    assert _mean_abs_diff(seen, desktop) < 0.5 * _mean_abs_diff(blank, desktop)
