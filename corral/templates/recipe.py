"""The recipe of the `base` template: a small Debian root filesystem built by mmdebstrap.

The recipe is data, and its hash decides whether a present template is still current: a change
to the package list, the excludes or the customize script changes the hash and forces a rebuild,
while a change of mirror does not (it changes where packages come from, not what the template is).

What goes in, and why it stays lean:
- the tools the E2B base sandbox is expected to have for agents' shell work: bash, coreutils,
  findutils, procps, psmisc, util-linux, less, iproute2, curl, git, ca-certificates;
- python3 with python3-pip, and `python` on PATH (python-is-python3: E2B's base has it, and
  agents and E2B's own tests call `python`): agents run `pip install x` as often as they run Python, and without
  pip that fails. Debian marks its Python "externally managed" (PEP 668); the template's
  /etc/pip.conf lets pip install anyway, which is what a throwaway sandbox wants (as `user`, pip
  falls back to ~/.local; as root, it writes to the sandbox's own writable layer);
- netbase (/etc/services, /etc/protocols, a few KB): without it getservbyname() and some
  Python networking code fail in surprising ways.
Left out on purpose: sudo (the API already runs commands as root when asked, and setuid helpers
are a way out of the sandbox user, so setuid/setgid bits are also stripped), compilers and
python3-dev (+200 MB; custom templates add them), numpy/pandas (+130 MB; same), Node.js, docs,
man pages and locales (C.UTF-8 is built into glibc).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from corral.templates.info import TemplateResources

RECIPE_VERSION = 2   # 2: every published tree carries a build marker
DEFAULT_USER_UID = 1000

_PACKAGES = (
    "bash", "ca-certificates", "coreutils", "curl", "findutils", "git", "iproute2", "less",
    "netbase", "procps", "psmisc", "python3", "python3-pip", "python-is-python3", "util-linux",
)

_DPKG_OPTS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",     # licences stay with the binaries
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)

# Runs on the host with the finished tree as $1 (mmdebstrap --customize-hook).
_CUSTOMIZE = r"""set -eu
chroot "$1" useradd --create-home --uid 1000 --user-group --shell /bin/bash user
install -d -o 1000 -g 1000 -m 0755 "$1/data" "$1/output"
printf '[global]\nbreak-system-packages = true\n' > "$1/etc/pip.conf"
find "$1" -xdev -type f -perm /6000 -exec chmod ug-s {} +
"""


@dataclass(frozen=True)
class DebianRecipe:
    name: str
    suite: str = "bookworm"
    variant: str = "minbase"
    packages: tuple[str, ...] = _PACKAGES
    dpkg_opts: tuple[str, ...] = _DPKG_OPTS
    customize: str = _CUSTOMIZE
    resources: TemplateResources = field(default_factory=TemplateResources)
    # Paths (relative to the rootfs) that must exist after the build, or the build failed.
    required: tuple[str, ...] = (
        "usr/bin/bash", "usr/bin/python3", "usr/bin/python", "usr/bin/pip3", "usr/bin/git", "usr/bin/curl",
        "usr/bin/ps", "usr/bin/ip", "home/user", "data", "output", "etc/pip.conf",
    )

    @property
    def hash(self) -> str:
        data = asdict(self)
        data.pop("resources")          # defaults can change without changing the tree
        data.pop("required")
        data["packages"] = sorted(self.packages)
        data["recipe_version"] = RECIPE_VERSION
        blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    def argv(self, mmdebstrap: str, target: Path, sources_file: Path | None) -> list[str]:
        args = [
            mmdebstrap,
            "--mode=root",             # chroot as host root: files owned by host uids 0..65535
            f"--variant={self.variant}",
            "--format=directory",
            "--include=" + ",".join(sorted(self.packages)),
        ]
        args += [f"--dpkgopt={opt}" for opt in self.dpkg_opts]
        args += ["--customize-hook=" + self.customize, "--", self.suite, str(target)]
        if sources_file is not None:
            args.append(str(sources_file))
        return args


BASE_RECIPE = DebianRecipe(name="base")
