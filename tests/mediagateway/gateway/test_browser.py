"""The gateway in a real browser: a person types a query, presses the button, sees ranked titles
(the screenshot shows them), opens an agent step and sees its generated code. First against the
real orchestrator on a local corral server (`corral gateway` as a user runs it), then with agent
output that carries HTML, which must appear as text."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from corral.mediagateway.gateway import create_app
from tests.conftest import Server
from tests.mediagateway.frontends import client_env, free_port, running_sandboxes, start_cli, wait_listening
from tests.processes import stop
from tests.mediagateway.gateway.browser import chromium_page, region_stats
from tests.mediagateway.gateway.conftest import ScriptedOrchestrator


def ask(page, base: str, query: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/")
    page.fill("#query", query)
    page.click("#go")
    page.wait_for_selector("#ranking li.item", timeout=240_000)


@pytest.mark.e2e
def test_a_person_asks_and_sees_ranked_results_and_the_agents_code(server: Server, cli_log, tmp_path: Path) -> None:
    port = free_port()
    proc = start_cli(["gateway", "--port", str(port)], client_env(server), cli_log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_listening(proc, port, cli_log)
        with chromium_page() as page:
            page.goto(base + "/")
            page.wait_for_function("document.querySelectorAll('#user option').length > 1")  # the catalog's users
            before = page.screenshot(path=str(tmp_path / "before.png"))
            page.fill("#query", "sci-fi like Stranger Things")
            page.select_option("#user", index=1)
            page.click("#go")
            page.wait_for_selector("#ranking li.item", timeout=240_000)
            request_id = page.evaluate("location.hash").removeprefix("#r=")
            trace = httpx.get(f"{base}/api/requests/{request_id}", timeout=30).json()

            titles = page.locator("#ranking .title").all_inner_texts()
            assert titles == [i["title"] for i in trace["recommendations"]] and titles
            for title in titles[:3]:
                assert page.get_by_text(title, exact=True).first.is_visible()
            assert trace["user_id"] and "for " + trace["user_id"] in page.inner_text("#summary")

            after = page.screenshot(path=str(tmp_path / "results.png"))
            box = page.locator("#results").bounding_box()
            shown, empty = region_stats(after, box), region_stats(before, box)
            assert empty["not_background"] < 0.01, "the results region was not empty before the query"
            assert shown["not_background"] > 0.5, "the results region is not drawn"
            assert shown["dark"] > 0.01, "no text in the results region"
            assert shown["accent"] > 0.002, "no rank numbers or score bars in the results region"

            agents = [s["agent"] for s in trace["steps"]]
            assert page.locator("details.step .agent").all_inner_texts() == agents
            # The first step that ran code in a sandbox (a step that failed before it has neither).
            n = next(i for i, s in enumerate(trace["steps"]) if s["sandbox_id"] and s["code"].strip())
            expected = trace["steps"][n]
            step = page.locator("details.step").nth(n)
            assert not step.locator("pre.code").is_visible()
            step.locator("summary").click()
            code = step.locator("pre.code")
            code.wait_for(state="visible")
            assert code.inner_text().strip() == expected["code"].strip()
            assert expected["sandbox_id"] in step.locator("dl").inner_text()
            assert expected["outcome"] in step.locator(".outcome").inner_text().lower()
            step.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "step.png"), full_page=True)
            used = {s["sandbox_id"] for s in trace["steps"] if s["sandbox_id"]}
            assert used and not used & running_sandboxes(server), "a query left its agents' sandboxes running"
            region = region_stats(page.screenshot(), step.bounding_box())
            assert region["dark"] > 0.05, "the opened step shows no code block"
    finally:
        stop(proc)
    print(f"screenshots: {tmp_path}")


@pytest.fixture
def scripted_gateway() -> Iterator[tuple[str, ScriptedOrchestrator]]:
    hostile = ['<img src=x onerror="document.title=\'pwned\'">', "<b>bold</b> & <i>co</i>", "Plain Title"]
    orch = ScriptedOrchestrator(hostile)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(orch, users=[("u001", "<u>Ada</u>")]), host="127.0.0.1",
                                        port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", orch
    srv.should_exit = True
    thread.join(timeout=30)


def test_agent_output_with_html_is_shown_as_text(scripted_gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, orch = scripted_gateway
    with chromium_page() as page:
        ask(page, base, "<script>alert(1)</script>")
        assert page.locator("#ranking .title").all_inner_texts() == orch.titles
        assert page.locator("#ranking img, #ranking b, #ranking i, #steps img").count() == 0
        assert page.title() == "Media Gateway"
        assert "<script>alert(1)</script>" in page.inner_text("#status")
        assert page.locator("#user option").nth(1).inner_text() == "u001 (<u>Ada</u>)"
        page.locator("details.step summary").first.click()
        assert page.locator("details.step pre.code").first.inner_text().startswith("# discovery")
        page.screenshot(path=str(tmp_path / "escaped.png"))
        retried = page.locator("details.step[data-agent=recommendation]")
        retried.locator("summary").click()
        attempts = retried.locator("pre.attempt").all_inner_texts()
        assert attempts == ["raise RuntimeError('first try')", "print('second try')"]
        assert "failed: RuntimeError: first try" in retried.inner_text()
        assert "fell back to the deterministic recommender" in retried.inner_text()
        retried.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "attempts.png"))
    print(f"screenshots: {tmp_path}")


def test_bad_input_shows_the_servers_message(scripted_gateway) -> None:  # type: ignore[no-untyped-def]
    base, orch = scripted_gateway
    with chromium_page(http_errors_expected=True) as page:
        page.goto(base + "/")
        page.fill("#query", "x" * 400)
        page.evaluate("document.getElementById('query').removeAttribute('maxlength')")
        page.fill("#query", "x" * 600)
        page.click("#go")
        page.wait_for_selector("#status.error")
        assert "the limit is 500" in page.inner_text("#status")
        assert page.locator("#results").is_hidden()
    assert orch.calls == []
