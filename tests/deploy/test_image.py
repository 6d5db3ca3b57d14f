"""The OCI image: built by image/build.sh (mmdebstrap + umoci, no Docker, no registry pull) and
run with gVisor's `runsc` as the OCI runtime, the way a Kubernetes node would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.runtime.gvisor.runsc import find_runsc

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]
IMAGE_DIR = Path(os.environ.get("CORRAL_IMAGE_DIR", REPO / "build" / "image"))


@pytest.fixture(scope="module")
def image() -> Path:
    if os.geteuid() != 0:
        pytest.skip("building the image needs root (mmdebstrap --mode=root)")
    proc = subprocess.run([str(REPO / "image" / "build.sh"), str(IMAGE_DIR)], capture_output=True, text=True,
                          timeout=1800, cwd=REPO, env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout + proc.stderr + _tail(IMAGE_DIR / "build.log")
    return IMAGE_DIR / "oci"


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.fixture(scope="module")
def bundle(image: Path) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="corral-image-test-", dir="/var/tmp"))
    subprocess.run(["umoci", "unpack", "--image", f"{image}:latest", str(work / "bundle")], check=True,
                   capture_output=True, timeout=600)
    yield work / "bundle"
    shutil.rmtree(work, ignore_errors=True)


def _run_in_image(bundle: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `args` as the container's process: read-only root, no network, no terminal."""
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["root"]["readonly"] = True
    config_path.write_text(json.dumps(config))
    state = bundle.parent / "runsc-state"
    runsc = find_runsc()   # the pinned build `make deps` installs (or CORRAL_RUNSC / PATH's)
    cid = f"corral-image-{uuid.uuid4().hex[:8]}"
    try:
        return subprocess.run([runsc, "--root", str(state), "--network=none", "run", "--bundle", str(bundle), cid],
                              capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run([runsc, "--root", str(state), "delete", "--force", cid], capture_output=True, timeout=60)


def test_image_config_runs_corral_serve(image: Path):
    index = json.loads((image / "index.json").read_text())
    tags = {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}
    assert {"latest", "0.1.0"} <= tags
    blobs = image / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_text())
    assert config["config"]["Entrypoint"] == ["/opt/corral/bin/corral"] and config["config"]["Cmd"] == ["serve"]
    assert "3000/tcp" in config["config"]["ExposedPorts"]
    assert len(manifest["layers"]) == 2, "Debian and corral are separate layers (a code change ships one)"


def test_corral_serve_help_runs_from_the_image(bundle: Path):
    proc = _run_in_image(bundle, ["/opt/corral/bin/corral", "serve", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "Run the corral server" in proc.stdout


def test_installed_package_carries_its_migrations(bundle: Path):
    """The wheel (not the editable checkout) must ship Alembic's files: open a store from it."""
    proc = _run_in_image(bundle, ["/opt/corral/bin/corral", "keys", "create", "--name", "image-test",
                                  "--data-dir", "/dev/shm/corral"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().startswith("e2b_")


def test_image_has_no_setuid_files(bundle: Path):
    rootfs = bundle / "rootfs"
    found = [str(p) for p in rootfs.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_mode & 0o6000]
    assert found == []
