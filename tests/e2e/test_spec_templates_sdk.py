"""The product spec's templates used the way the spec uses them: through the official SDKs and the
server, with the template's resources, environment and users applied to every sandbox."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Server

pytestmark = pytest.mark.e2e


def _require(name: str) -> None:
    from corral.templates import TemplateStore

    if not TemplateStore().exists(name):
        pytest.skip(f"template {name} is not built (make spec-templates)")


def _opts(server: Server) -> dict[str, str]:
    return {"api_key": server.api_key, "api_url": server.url, "sandbox_url": server.url}


def test_analysis_template_runs_the_recommendation_code(server: Server) -> None:
    """§3.2: `Sandbox(template="media-gateway-analysis")` with the code-interpreter SDK."""
    _require("media-gateway-analysis")
    from e2b_code_interpreter import Sandbox

    with Sandbox.create(template="media-gateway-analysis", timeout=300, **_opts(server)) as sbx:
        info = sbx.get_info()
        assert (info.cpu_count, info.memory_mb) == (2, 2048)  # from the template's e2b.toml
        sbx.files.write("/data/preferences.json", json.dumps({"user": [1, 0, 2], "items": {"a": [1, 0, 2], "b": [0, 3, 0]}}))
        execution = sbx.run_code(
            "import json, numpy as np, pandas as pd, statsmodels.api as sm\n"
            "from sklearn.metrics.pairwise import cosine_similarity\n"
            "p = json.load(open('/data/preferences.json'))\n"
            "items = pd.DataFrame(p['items']).T\n"
            "s = pd.Series(cosine_similarity([p['user']], items.values)[0], index=items.index)\n"
            "s.sort_values(ascending=False).to_json('/output/recommendations.json')\n"
            "list(s.sort_values(ascending=False).index)"
        )
        assert execution.error is None, execution.error
        assert list(json.loads(sbx.files.read("/output/recommendations.json"))) == ["a", "b"]


def test_agent_template_has_its_tools_env_and_utilities(server: Server) -> None:
    _require("media-gateway-agent")
    from e2b import Sandbox

    with Sandbox.create(template="media-gateway-agent", timeout=300, **_opts(server)) as sbx:
        env = sbx.commands.run("echo $PYTHONPATH $HF_HUB_OFFLINE; whoami").stdout.split()
        assert env == ["/opt/media-gateway", "1", "user"]
        tools = sbx.commands.run("ffmpeg -version | head -1; jq --version; curl --version | head -1").stdout
        assert "ffmpeg version" in tools and "jq-" in tools and "curl" in tools
        out = sbx.commands.run(
            "python3 -c \"from agent_utils import search; import json; "
            "print(json.dumps(search('a small cat resting', ['stock markets fell', 'a kitten sleeps on a rug'], k=1)))\"",
            timeout=300,
        ).stdout
        (best,) = json.loads(out.strip().splitlines()[-1])
        assert best[0] == 1  # the cat sentence, found offline by the packaged embedding model
        # The template asks for egress to TMDB; this test server grants none, so it is offline.
        assert sbx.get_info().allow_internet_access is False
