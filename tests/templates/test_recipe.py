from dataclasses import replace
from pathlib import Path

from corral.templates.info import TemplateResources
from corral.templates.recipe import BASE_RECIPE


def test_hash_is_stable_and_ignores_package_order_and_resources():
    assert BASE_RECIPE.hash == replace(BASE_RECIPE).hash
    assert BASE_RECIPE.hash.startswith("sha256:")
    shuffled = replace(BASE_RECIPE, packages=tuple(reversed(BASE_RECIPE.packages)))
    assert shuffled.hash == BASE_RECIPE.hash
    assert replace(BASE_RECIPE, resources=TemplateResources(8, 8192, 8192)).hash == BASE_RECIPE.hash


def test_hash_changes_with_what_goes_into_the_tree():
    assert replace(BASE_RECIPE, packages=BASE_RECIPE.packages + ("jq",)).hash != BASE_RECIPE.hash
    assert replace(BASE_RECIPE, suite="trixie").hash != BASE_RECIPE.hash
    assert replace(BASE_RECIPE, customize=BASE_RECIPE.customize + "true\n").hash != BASE_RECIPE.hash
    assert replace(BASE_RECIPE, dpkg_opts=()).hash != BASE_RECIPE.hash


def test_base_recipe_is_the_promised_one():
    for pkg in ("bash", "coreutils", "procps", "python3", "curl", "git", "ca-certificates", "iproute2",
                "findutils", "less", "psmisc", "util-linux"):
        assert pkg in BASE_RECIPE.packages
    assert "sudo" not in BASE_RECIPE.packages
    assert BASE_RECIPE.name == "base" and BASE_RECIPE.variant == "minbase"
    # `python` on PATH, as on E2B's base; a build whose tree lacks it fails (required paths).
    assert "python-is-python3" in BASE_RECIPE.packages and "usr/bin/python" in BASE_RECIPE.required


def test_argv_builds_as_root_into_the_target_with_excludes_and_hook():
    argv = BASE_RECIPE.argv("/usr/bin/mmdebstrap", Path("/s/.build-base-1-x/rootfs"), Path("/s/src.list"))
    assert argv[0] == "/usr/bin/mmdebstrap"
    assert "--mode=root" in argv and "--variant=minbase" in argv
    assert "--dpkgopt=path-exclude=/usr/share/man/*" in argv
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv
    assert "--dpkgopt=path-exclude=/usr/share/locale/*" in argv
    hook = next(a for a in argv if a.startswith("--customize-hook="))
    assert "useradd" in hook and "/data" in hook and "/output" in hook and "chmod ug-s" in hook
    assert argv[-4:] == ["--", "bookworm", "/s/.build-base-1-x/rootfs", "/s/src.list"]
    assert BASE_RECIPE.argv("m", Path("/t"), None)[-3:] == ["--", "bookworm", "/t"]
