"""The dashboard as a person sees it: headless Debian Chromium through Playwright against a real
server. Log in with the key, see a sandbox row (template, tier, state, age, CPU, memory), its
egress audit and logs, the usage charts; pause it, kill it and see the row go. Metadata carrying
HTML is shown as text and never runs.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e

PIL = pytest.importorskip("PIL.Image")
playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE = '<img src=x onerror="window.__xss=1"><b>bold</b><script>window.__xss=2</script>'


@pytest.fixture(scope="module")
def dash_server(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make deps installs it)")
    srv = start_server(tmp_path_factory.mktemp("dash") / "data", extra_env={"CORRAL_POOL": "", "CORRAL_METRICS_INTERVAL": "1"})
    yield srv
    stop_server(srv)


def _keep(shot: Path) -> None:
    """Screenshots stay in the test's tmp dir; CORRAL_TEST_SCREENSHOTS names a dir to copy them to."""
    if os.environ.get("CORRAL_TEST_SCREENSHOTS"):
        dest = Path(os.environ["CORRAL_TEST_SCREENSHOTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / shot.name)


def _not_blank(shot: Path) -> None:
    img = PIL.open(shot).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100, f"{shot.name} is blank"


def test_dashboard_in_a_real_browser(dash_server, monkeypatch, tmp_path):
    from e2b import Sandbox

    srv = dash_server
    for k, v in srv.env().items():
        monkeypatch.setenv(k, v)
    done = Sandbox.create(metadata={"agent": "search"}, timeout=60)
    done.kill()  # an ended sandbox, so the usage charts have a second group
    sbx = Sandbox.create(metadata={"agent": "discovery", "note": HOSTILE}, timeout=300)
    sid = sbx.sandbox_id
    sbx.commands.run("echo hello")
    time.sleep(1.5)  # one metrics round, so the CPU and memory columns have a sample
    errors: list[str] = []
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
            page = ctx.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url + "/dashboard")
            assert page.is_visible("#login") and not page.is_visible("#main-view")
            shot = tmp_path / "dashboard-login.png"
            page.screenshot(path=str(shot))
            _keep(shot)
            _not_blank(shot)

            # A wrong key is refused and nothing is shown.
            page.fill("#key", "e2b_wrong")
            page.click("#login button[type=submit]")
            page.wait_for_selector("#login-error:has-text('refused')")
            assert not page.is_visible("#main-view")

            page.fill("#key", srv.api_key)
            page.click("#login button[type=submit]")
            # The table is redrawn every 2 s: everything below goes through selectors, which are
            # resolved at each use, never through element handles that a redraw detaches.
            row = f"#sandboxes tr[data-id='{sid}']"
            page.wait_for_selector(row, timeout=30_000)
            # The key never reaches the URL; it is in this tab's session storage.
            assert page.url == srv.url + "/dashboard" and srv.api_key not in page.url
            assert page.evaluate("sessionStorage.getItem('corral-api-key')") == srv.api_key
            cells = page.locator(f"{row} td").all_inner_texts()
            assert cells[0] == sid and cells[1] == "base" and cells[2] == "namespace" and cells[3] == "running"
            assert cells[4].endswith("s") and "% of" in cells[5] and "vCPU" in cells[5] and "MB of" in cells[6]
            # Hostile metadata is text: shown literally, no element made from it, nothing ran.
            assert f"note={HOSTILE}" in cells[7] and "agent=discovery" in cells[7]
            assert page.query_selector_all("#sandboxes img, #sandboxes b, #sandboxes script") == []
            assert page.evaluate("window.__xss") is None

            page.click(f"{row} button[data-action=details]")
            page.wait_for_selector("#logs li:has-text('sandbox started')")
            assert "offline" in page.inner_text("#audit")
            page.wait_for_selector("#chart-sandboxes svg rect")
            usage_text = page.inner_text("#usage-table")
            assert "discovery" in usage_text and "search" in usage_text
            assert "Sandbox hours" in page.inner_text("#cost-table")
            assert len(page.query_selector_all("#chart-hours svg rect")) >= 2
            shot = tmp_path / "dashboard-live.png"
            page.screenshot(path=str(shot), full_page=True)
            _keep(shot)
            _not_blank(shot)

            page.click(f"{row} button[data-action=pause]")
            page.wait_for_selector(f"{row} td.state-paused")
            page.click(f"{row} button[data-action=kill]")
            page.wait_for_selector(row, state="detached", timeout=30_000)
            assert page.is_visible("#no-sandboxes")
            shot = tmp_path / "dashboard-killed.png"
            page.screenshot(path=str(shot), full_page=True)
            _keep(shot)
            _not_blank(shot)
        finally:
            browser.close()
    # The kill was real.
    r = httpx.get(f"{srv.url}/sandboxes/{sid}", headers={"X-API-Key": srv.api_key})
    assert r.status_code == 404
    # The only console error is the refused key's 401 (Chromium logs failed fetches).
    assert all("401" in e for e in errors), errors
