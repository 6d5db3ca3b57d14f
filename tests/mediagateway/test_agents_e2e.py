"""Every agent end to end on a corral server, in the spec's templates, with the offline
generator; plus the recommendation fallback and the orchestrator on one query."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from corral.mediagateway import (AgentRequest, DirectoryAdapterStore, OfflineGenerator, Orchestrator,
                                 SandboxManager, TransferTooLargeError, load_catalog)

from .conftest import running_ids

pytestmark = pytest.mark.e2e
QUERY = "sci-fi like Stranger Things"


class RaisingGenerator:
    """Generated code that raises, as a model's buggy program would."""

    name = "raising"
    can_repair = False

    async def generate(self, request, *, previous_code=None, error=None) -> str:
        return "raise RuntimeError('generated recommender bug')\n"


@pytest.fixture
async def orch(corral_settings, tmp_path):
    o = Orchestrator(SandboxManager(corral_settings), OfflineGenerator(), load_catalog(),
                     DirectoryAdapterStore(tmp_path / "adapters"))
    before = await running_ids(corral_settings)
    yield o
    await o.aclose()
    assert await running_ids(corral_settings) <= before, "an agent left a sandbox behind"


async def test_discovery(orch):
    out = await orch.run_agent("discovery", AgentRequest(query=QUERY))
    assert out.step.outcome == "ok", out.step.error
    assert out.step.template == "media-gateway-agent" and out.step.sandbox_id and "TfidfVectorizer" in out.step.code
    assert 0 < len(out.items) <= 10
    top = out.items[0]
    assert "Science Fiction" in top.genres and "like Stranger Things" in top.reason
    assert [i.score for i in out.items] == sorted((i.score for i in out.items), reverse=True)


async def test_discovery_on_a_users_own_catalog(corral_settings, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("title,year,genres,description\n"
                    "Orbital Kids,2020,Science Fiction|Drama,kids on bikes find a government lab experiment\n"
                    "Bake Off Club,2019,Comedy,a bakery at war with its rival\n")
    o = Orchestrator(SandboxManager(corral_settings), OfflineGenerator(), load_catalog(path),
                     DirectoryAdapterStore(tmp_path / "adapters"))
    try:
        out = await o.run_agent("discovery", AgentRequest(query=QUERY))
    finally:
        await o.aclose()
    assert out.step.outcome == "ok", out.step.error
    assert [i.title for i in out.items] == ["Orbital Kids", "Bake Off Club"]


async def test_recommendation(orch):
    out = await orch.run_agent("recommendation", AgentRequest(user_id="u01"))
    assert out.step.outcome == "ok", out.step.error
    watched = {orch.catalog.by_id()[w.title_id].title for w in orch.catalog.history("u01")}
    assert out.items and not watched & {i.title for i in out.items}
    favorites = set(orch.catalog.user("u01").favorite_genres)
    assert sum(bool(favorites & set(i.genres)) for i in out.items) >= len(out.items) // 2


async def test_recommendation_falls_back_on_a_sandbox_error(orch):
    orch.generator = RaisingGenerator()
    out = await orch.run_agent("recommendation", AgentRequest(user_id="u01", query="comedy"))
    assert out.step.outcome == "fallback"
    assert out.step.error == "RuntimeError: generated recommender bug" and out.step.sandbox_id
    assert out.items and all(i.reason.startswith("fallback:") for i in out.items)
    assert any("fallback" in n for n in out.notes) and "fallback" in out.step.output_summary


async def test_analysis(orch):
    out = await orch.run_agent("analysis", AgentRequest())
    assert out.step.outcome == "ok", out.step.error
    assert out.output["rows"] == len(orch.catalog.ratings)
    assert {g["genre"] for g in out.output["genres"]} == set(orch.catalog.genres)
    png = out.artifacts["genre_ratings.png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000


async def test_sona_update_is_versioned(orch):
    first = await orch.run_agent("sona", AgentRequest(user_id="u02"))
    assert first.step.outcome == "ok", first.step.error
    assert first.output["version"] == 1 and first.output["loss_after"] < first.output["loss_before"]
    second = await orch.run_agent("sona", AgentRequest(user_id="u02", query=orch.catalog.titles[0].title))
    assert second.step.outcome == "ok", second.step.error
    assert (second.output["previous_version"], second.output["version"]) == (1, 2)
    assert second.output["ewc_penalty"] > 0  # the previous adapter's Fisher weights pulled on the update
    store = orch.adapter_store
    assert store.versions("u02") == [1, 2]
    assert store.latest("u02")[1][:2] == b"PK"  # torch.save's zip format


async def test_content_analyzer(orch, tmp_path):
    out = await orch.run_agent("content", AgentRequest())
    assert out.step.outcome == "ok", out.step.error
    (tone,) = out.output["files"]
    assert tone["format_name"] == "wav" and abs(tone["duration_s"] - 1.0) < 0.01
    assert tone["streams"][0]["codec_name"] == "pcm_s16le" and tone["streams"][0]["channels"] == 1
    big = tmp_path / "huge.mkv"
    with big.open("wb") as f:
        f.truncate(11 * 1024 * 1024)
    with pytest.raises(TransferTooLargeError):
        await orch.run_agent("content", AgentRequest(files=[big]))


async def test_scraping(orch):
    title = orch.catalog.titles[3]
    out = await orch.run_agent("scraping", AgentRequest(query=title.title))
    assert out.step.outcome == "ok", out.step.error
    (page,) = out.output["pages"]
    assert page["title"] == title.title and page["genres"] == title.genres and page["year"] == title.year
    assert page["og"]["og:title"] == title.title
    assert out.artifacts["page.png"].startswith(b"\x89PNG")


async def test_orchestrator_one_query_and_the_search_agent(orch):
    """One request through the orchestrator; its search step is also the search agent's e2e test
    (the template loads torch and the embedding model, the slowest start of all, so once)."""
    trace = await orch.run(QUERY, user_id="u01")
    assert [s.agent for s in trace.steps] == ["discovery", "search", "recommendation"]
    assert all(s.outcome == "ok" for s in trace.steps), [s.error for s in trace.steps]
    assert len({s.sandbox_id for s in trace.steps}) == 3  # each agent in its own sandbox
    assert trace.recommendations and trace.sandbox_seconds > 0
    assert any("matches your query" in r.reason for r in trace.recommendations)
    watched = {orch.catalog.by_id()[w.title_id].title for w in orch.catalog.history("u01")}
    assert not watched & {r.title for r in trace.recommendations}
    doc = json.loads(trace.model_dump_json())
    assert {"request_id", "query", "user_id", "started_at", "duration_s", "steps", "recommendations", "sandbox_seconds"} <= set(doc)

    search = trace.steps[1]
    assert search.template == "media-gateway-search" and "embed" in search.code
    assert "384 dimensions" in search.output_summary  # the offline MiniLM model's vectors
    assert search.items and "Science Fiction" in search.items[0].genres
    assert search.items[0].reason.startswith("semantic similarity")


def _cli(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "corral.cli.main", "agents", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_cli(server, tmp_path):
    env = {**os.environ, **server.env(), "MEDIA_GATEWAY_ADAPTER_DIR": str(tmp_path / "adapters")}
    listed = _cli(env, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {a["name"]: a["template"] for a in json.loads(listed.stdout)}["search"] == "media-gateway-search"
    r = _cli(env, "run", "content", "--json", "--artifacts", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["step"]["outcome"] == "ok" and doc["output"]["files"][0]["format_name"] == "wav"
    for args, message in [(("run", "nobody"), "error: no agent 'nobody'"), (("orchestrate", " "), "error: query: is empty"),
                          (("run", "discovery"), "error: query: the discovery agent needs a query")]:
        bad = _cli(env, *args, timeout=60)
        assert bad.returncode == 1 and bad.stderr.startswith(message) and "Traceback" not in bad.stderr, bad.stderr
    no_key = _cli({k: v for k, v in env.items() if k != "E2B_API_KEY"}, "run", "content", timeout=60)
    assert no_key.returncode == 1 and "E2B_API_KEY" in no_key.stderr


@pytest.mark.parametrize("query,user,field", [("", None, "query"), ("x" * 501, None, "query"), ("comedy", "nobody", "user")])
async def test_bad_requests_are_refused_before_any_sandbox(orch, query, user, field):
    from corral.mediagateway import ConfigError

    with pytest.raises(ConfigError) as err:
        await orch.run(query, user_id=user)
    assert err.value.field == field and err.value.status == 400
    assert orch.manager.live_ids() == []
