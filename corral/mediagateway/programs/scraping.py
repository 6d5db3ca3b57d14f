# Metadata scraping (offline template): Playwright drives the desktop template's Chromium against
# pages served inside the sandbox itself (the sandbox has no network), and reads their metadata.
import json
import subprocess
import sys
import time
import urllib.request

import desktop
from playwright.sync_api import sync_playwright

with open("/data/inputs.json") as f:
    inp = json.load(f)
port = int(inp.get("port", 8765))
server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                           "--directory", inp["site_dir"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    pages = []
    with sync_playwright() as p:
        browser = desktop.browser(p, headless=True)
        page = browser.new_page()
        for n, name in enumerate(inp["pages"]):
            url = f"http://127.0.0.1:{port}/{name}"
            page.goto(url)

            def text(selector):
                el = page.query_selector(selector)
                return el.inner_text().strip() if el else None

            meta = {m.get_attribute("property"): m.get_attribute("content")
                    for m in page.query_selector_all("meta[property]")}
            year = text(".year")
            pages.append({"url": url, "title": text("h1"), "description": text(".description"),
                          "genres": [g.inner_text().strip() for g in page.query_selector_all(".genre")],
                          "year": int(year) if year and year.isdigit() else None,
                          "rating": text(".rating"), "og": meta})
            if n == 0:
                page.screenshot(path="/output/page.png")
        browser.close()
finally:
    server.terminate()
with open("/output/results.json", "w") as f:
    json.dump({"pages": pages, "screenshot": "page.png"}, f)
print(f"scraped {len(pages)} pages")
