"""The spec's templates (templates/*), built by the set-up phase (templates/build-all.sh), each
running a real task in a sandbox made from it. The sandbox has no network: everything is offline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from corral.runtime.base import Limits, SandboxSpec
from corral.runtime.namespace import NamespaceTier
from corral.templates import TemplateStore
from corral.builder import load_image_config
from corral.builder.sandbox import BuildSandboxes

pytestmark = [pytest.mark.root, pytest.mark.e2e]
STORE = Path(os.environ.get("CORRAL_TEMPLATE_DIR") or "/var/lib/corral/templates")


async def run_in(template: str, script: str, tmp_path: Path, timeout: float = 300) -> tuple[int, str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    store = TemplateStore(STORE)
    if not store.exists(template):
        pytest.skip(f"template {template} is not built (templates/build-all.sh)")
    info = store.get(template)
    image = load_image_config(info.path)
    assert image is not None
    tier = NamespaceTier(state_dir=Path("/var/lib/corral/test-runtime-state"), cgroup_group=f"corral-test-{os.getpid()}")
    await tier.start()
    sid = f"spec{os.getpid()}{abs(hash(template)) % 10000}"
    workdir = tmp_path / sid
    out: list[bytes] = []
    try:
        handle = await tier.create(SandboxSpec(sid, template, info.rootfs, workdir,
                                               uid_base=4_000_000_000 - 65536 * 5,
                                               limits=Limits(info.cpu_count, info.memory_mb, 2048, 512)))
        runner = BuildSandboxes(tmp_path / "unused")
        result = await runner._exec(handle.envd_socket, ["/bin/sh", "-c", script], user="user",
                                    cwd="/home/user", env=dict(image.env), output=lambda _s, d: out.append(d),
                                    timeout=timeout)
    finally:
        await tier.destroy(sid, workdir)
        await tier.close()
    return result.exit_code, b"".join(out).decode(errors="replace")


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


EMBED = r"""python3 - <<'EOF'
import json, os
assert os.environ.get("HF_HUB_OFFLINE") == "1"
from %s import embed, search
docs = ["a cat sat on the mat", "stock markets fell sharply today", "the kitten sleeps on a rug"]
hits = search("a small cat resting", docs, k=2)
v = embed(["hello"])
print(json.dumps({"dim": int(v.shape[1]), "top": [i for i, _ in hits], "score": hits[0][1]}))
EOF"""


async def test_search_embeds_and_searches_offline(tmp_path: Path) -> None:
    rc, out = await run_in("media-gateway-search", EMBED % "search_utils", tmp_path)
    assert rc == 0, out
    res = last_json(out)
    assert res["dim"] == 384 and set(res["top"]) == {0, 2} and res["score"] > 0.3


async def test_agent_has_its_stack(tmp_path: Path) -> None:
    script = (EMBED % "agent_utils") + r"""
python3 -c "import numpy, pandas, sklearn, httpx, ruvector; print('imports ok')"
ffmpeg -version >/dev/null && jq --version && curl --version >/dev/null && echo tools ok
"""
    rc, out = await run_in("media-gateway-agent", script, tmp_path)
    assert rc == 0, out
    assert "imports ok" in out and "tools ok" in out and '"dim": 384' in out


async def test_content_analyzer_probes_generated_media(tmp_path: Path) -> None:
    script = ("ffmpeg -loglevel error -f lavfi -i testsrc=duration=1:size=320x240:rate=10 "
              "-f lavfi -i sine=frequency=440:duration=1 -shortest /tmp/t.mkv && "
              "ffprobe -v error -show_entries stream=codec_type,width,height -of json /tmp/t.mkv | jq -c .")
    rc, out = await run_in("content-analyzer", script, tmp_path)
    assert rc == 0, out
    streams = last_json(out)["streams"]
    assert {"codec_type": "video", "width": 320, "height": 240} in streams
    assert any(s["codec_type"] == "audio" for s in streams)


async def test_sona_lora_update_with_torch(tmp_path: Path) -> None:
    rc, out = await run_in("sona-lora-updater", "python3 -c 'import json, torch, lora_update; "
                           "r = lora_update.update(); r[\"torch\"] = torch.__version__; print(json.dumps(r))'", tmp_path)
    assert rc == 0, out
    res = last_json(out)
    assert res["torch"].startswith("2.13.0") and res["loss_after"] < res["loss_before"] * 0.5 and res["delta_norm"] > 0


async def test_analysis_data_stack(tmp_path: Path) -> None:
    rc, out = await run_in("media-gateway-analysis", "python3 -c 'import pandas as pd; from sklearn.linear_model import "
                           "LinearRegression; df = pd.DataFrame({\"x\": range(10)}); df[\"y\"] = 2 * df.x + 1; "
                           "m = LinearRegression().fit(df[[\"x\"]], df.y); print(round(m.coef_[0], 3))'", tmp_path)
    assert rc == 0, out
    assert out.strip().splitlines()[-1] == "2.0"


async def test_desktop_chromium_under_playwright(tmp_path: Path) -> None:
    script = r"""set -e
start-desktop
mkdir -p /tmp/site && printf '<html><head><title>corral desktop ok</title></head><body><h1>hi</h1></body></html>' > /tmp/site/index.html
(cd /tmp/site && python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 &)
for i in $(seq 1 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', 8765))" 2>/dev/null && break; sleep 0.1; done
python3 - <<'EOF'
import json, desktop
title = desktop.page_title_and_screenshot("http://127.0.0.1:8765/", "/tmp/page.png", headless=False)
desktop.move_mouse(10, 10); desktop.click(20, 20); desktop.type_text("x")
shot = desktop.screenshot("/tmp/screen.png")
print(json.dumps({"title": title, "png": open("/tmp/page.png", "rb").read(8).hex(),
                  "screen": open(shot, "rb").read(8).hex()}))
EOF"""
    rc, out = await run_in("desktop", script, tmp_path)
    assert rc == 0, out
    res = last_json(out)
    assert res["title"] == "corral desktop ok"
    assert res["png"] == res["screen"] == "89504e470d0a1a0a"
