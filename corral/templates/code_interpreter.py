"""The recipe of the `code-interpreter-v1` template: base plus the kernels' languages and libraries.

Everything comes from Debian packages, so a build needs only the Debian mirror and the result is
reproducible from the package list: no pip, npm or CRAN download happens at build or run time.
What each addition is for:
- python3-ipykernel (+ jupyter-client, zmq): the Python kernel the interpreter drives;
- numpy, pandas, matplotlib (+ matplotlib-inline, the backend that turns figures into PNGs),
  scipy, scikit-learn, pillow: the data stack agents expect from a code interpreter;
- nodejs + node-typescript: JavaScript cells run in node, TypeScript cells are transpiled by
  Debian's TypeScript compiler inside the kernel process;
- r-base-core + r-cran-irkernel: R through IRkernel (a Jupyter kernel, driven like Python);
- default-jdk-headless: Java cells through the jdk.jshell API.
OpenJDK's maintainer scripts register man pages with update-alternatives and fail when
/usr/share/man/man1 is missing, so this template keeps section 1 man pages (a few MB) that the base
recipe excludes. The customize step pre-builds matplotlib's font cache for `user`, so the first chart of every
sandbox does not pay a font scan.
"""

from __future__ import annotations

from corral.templates.info import TemplateResources
from corral.templates.recipe import BASE_RECIPE, DebianRecipe

TEMPLATE_NAME = "code-interpreter-v1"

_EXTRA_PACKAGES = (
    "python3-ipykernel", "python3-jupyter-client", "python3-zmq",
    "python3-numpy", "python3-pandas", "python3-matplotlib", "python3-matplotlib-inline",
    "python3-scipy", "python3-sklearn", "python3-pil",
    "nodejs", "node-typescript",
    "r-base-core", "r-cran-irkernel",
    "default-jdk-headless",
)

_EXTRA_CUSTOMIZE = r"""
chroot --userspec=1000:1000 "$1" env HOME=/home/user MPLBACKEND=Agg /usr/bin/python3 -c 'import matplotlib.pyplot'
"""

_EXTRA_REQUIRED = (
    "usr/lib/python3/dist-packages/ipykernel",
    "usr/lib/python3/dist-packages/matplotlib_inline",
    "usr/lib/python3/dist-packages/pandas",
    "usr/bin/node",
    "usr/share/nodejs/typescript/package.json",
    "usr/bin/R",
    "usr/lib/R/site-library/IRkernel",
    "usr/bin/java",
    "home/user/.cache/matplotlib",
)

# Later dpkg path options win: man pages stay excluded except section 1 (see above).
_DPKG_OPTS = BASE_RECIPE.dpkg_opts + ("path-include=/usr/share/man/man1/*",)

CODE_INTERPRETER_RECIPE = DebianRecipe(
    name=TEMPLATE_NAME,
    dpkg_opts=_DPKG_OPTS,
    packages=BASE_RECIPE.packages + _EXTRA_PACKAGES,
    customize=BASE_RECIPE.customize + _EXTRA_CUSTOMIZE,
    resources=TemplateResources(cpu_count=2, memory_mb=2048, disk_mb=4096),
    required=BASE_RECIPE.required + _EXTRA_REQUIRED,
)
