#!/usr/bin/env bash
# Build corral's OCI image without Docker and without pulling from any container registry:
#   1. a Debian root from mmdebstrap (Debian's own package mirror, as the host's apt uses it),
#   2. corral and its pinned dependencies installed into /opt/corral from wheels built on the host,
#   3. assembled with Debian's umoci into an OCI image layout (two layers: Debian, then corral),
#      which any OCI tool can push (skopeo copy oci:DIR:TAG docker://REGISTRY/corral:TAG).
#
# Usage: image/build.sh [OUT_DIR]      (default build/image; run as root)
# Result: OUT_DIR/oci (OCI layout, tag corral:VERSION and corral:latest), OUT_DIR/build.log.
# The image is keyed by a hash of its inputs (this script, pyproject.toml, corral's sources):
# when OUT_DIR/oci already holds that key, nothing is rebuilt.
#
# It is the minimal image: only what `corral serve` needs for both roles (Python, corral, the
# tools the node agent runs: iproute2, nftables, e2fsprogs, util-linux). See docs/DEPLOY.md
# ("The image") for what a production image adds.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$REPO/build/image}")
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,iproute2,nftables,e2fsprogs,util-linux,libseccomp2,openssl,tzdata

[ "$(id -u)" = 0 ] || { echo "error: image/build.sh must run as root (mmdebstrap --mode=root, chroot)" >&2; exit 1; }
for tool in mmdebstrap umoci; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (make deps installs it)" >&2; exit 1; }
done

VERSION=$("$PYTHON" -c 'import tomllib,sys; print(tomllib.load(open(sys.argv[1],"rb"))["project"]["version"])' "$REPO/pyproject.toml")
# Two cache keys: the Debian layer changes only with this script's package list, the corral layer
# with any source change. A code change rebuilds only the second (about a third of the time).
BASE_KEY=$(echo "$PACKAGES $SUITE $(sed -n '/^# BASE-BEGIN/,/^# BASE-END/p' "$0")" | sha256sum | cut -c1-16)
KEY=$( { cat "$0" "$REPO/pyproject.toml"; cd "$REPO" && git ls-files -z corral | sort -z | xargs -0 sha256sum; } \
       | sha256sum | cut -c1-16)

if [ -f "$OUT/oci/index.json" ] && [ "$(cat "$OUT/key" 2>/dev/null)" = "$KEY" ]; then
  echo "image: corral:$VERSION is current ($OUT/oci, key $KEY)"
  exit 0
fi

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.work-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT/build.log"
: > "$LOG"
START=$SECONDS
step() { echo "image: [$(( SECONDS - START ))s] $*"; }

# BASE-BEGIN (the Debian layer: anything between these markers is part of its cache key)
if [ -f "$OUT/base/index.json" ] && [ "$(cat "$OUT/base.key" 2>/dev/null)" = "$BASE_KEY" ]; then
  step "Debian layer is current ($OUT/base)"
else
  # The host's apt sources for the suite (the mirror templates use too), else mmdebstrap's default.
  "$PYTHON" -c 'import sys; from corral.templates.sources import host_sources, render; sys.stdout.write(render(host_sources(sys.argv[1])))' \
    "$SUITE" > "$WORK/sources.list"
  MIRROR=()
  [ -s "$WORK/sources.list" ] && MIRROR=("$WORK/sources.list")
  step "Debian $SUITE root (mmdebstrap --variant=essential +$PACKAGES)"
  mkdir -p "$OUT/debs"
  # force-unsafe-io: no fsync per file (the tree is thrown away if the build fails). The .debs
  # are kept in OUT/debs so that a rebuild downloads only what changed.
  mmdebstrap --mode=root --variant=essential --format=directory --include="$PACKAGES" \
    --aptopt='Acquire::Languages "none"' --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --skip=download/empty --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --setup-hook="sync-in $OUT/debs /var/cache/apt/archives" \
    --customize-hook="sync-out /var/cache/apt/archives $OUT/debs" \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
    "$SUITE" "$WORK/rootfs" "${MIRROR[@]}" >>"$LOG" 2>&1
  step "OCI layer 1: Debian"
  umoci init --layout "$WORK/base"
  umoci new --image "$WORK/base:debian"
  umoci unpack --image "$WORK/base:debian" "$WORK/bundle" >>"$LOG" 2>&1
  rmdir "$WORK/bundle/rootfs" && mv "$WORK/rootfs" "$WORK/bundle/rootfs"
  umoci repack --image "$WORK/base:debian" --history.created_by "mmdebstrap --variant=essential $SUITE +$PACKAGES" "$WORK/bundle"
  rm -rf "$WORK/bundle" "$OUT/base" && mv "$WORK/base" "$OUT/base" && echo "$BASE_KEY" > "$OUT/base.key"
fi
# BASE-END

step "wheels for corral $VERSION and its pinned dependencies"
PIPQ=(-m pip -q --disable-pip-version-check)
"$PYTHON" "${PIPQ[@]}" wheel --no-deps --wheel-dir "$WORK/wheels" "$REPO" >>"$LOG" 2>&1
# Dependencies from OUT/wheels when every pin is there already (no index lookups), else PyPI.
mkdir -p "$OUT/wheels"
CORRAL_WHL=$(ls "$WORK"/wheels/corral-*.whl)
"$PYTHON" "${PIPQ[@]}" wheel --no-index --find-links "$OUT/wheels" --wheel-dir "$OUT/wheels" "$CORRAL_WHL" >>"$LOG" 2>&1 \
  || "$PYTHON" "${PIPQ[@]}" wheel --find-links "$OUT/wheels" --wheel-dir "$OUT/wheels" "$CORRAL_WHL" >>"$LOG" 2>&1
rm -f "$OUT"/wheels/corral-*.whl

step "OCI layer 2: corral in /opt/corral"
cp -a "$OUT/base" "$WORK/oci"
umoci unpack --image "$WORK/oci:debian" "$WORK/bundle" >>"$LOG" 2>&1
R="$WORK/bundle/rootfs"
mkdir -p "$R/tmp/wheels" && cp "$WORK"/wheels/*.whl "$OUT"/wheels/*.whl "$R/tmp/wheels/"
chroot "$R" /usr/bin/python3 -m venv --without-pip /opt/corral
# The venv's own pip is not needed at run time: install with the one python3-venv ships.
PIPWHL=$(ls "$R"/usr/share/python-wheels/pip-*.whl | head -1)
chroot "$R" /opt/corral/bin/python "/usr/share/python-wheels/$(basename "$PIPWHL")/pip" install -q \
  --disable-pip-version-check --no-index --find-links /tmp/wheels corral >>"$LOG" 2>&1
rm -rf "$R/tmp/wheels" "$R/root/.cache"
# No setuid/setgid files: nothing in the image should raise privileges.
find "$R" -xdev -type f -perm /6000 -exec chmod ug-s {} +
install -d -m 0700 "$R/var/lib/corral"
umoci repack --image "$WORK/oci:debian" --history.created_by "pip install corral==$VERSION (wheels built from the repository)" "$WORK/bundle"

step "image config"
umoci config --image "$WORK/oci:debian" --tag "$VERSION" \
  --config.entrypoint /opt/corral/bin/corral --config.cmd serve \
  --config.env PATH=/opt/corral/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env CORRAL_DATA_DIR=/var/lib/corral/data --config.env CORRAL_HOST=0.0.0.0 \
  --config.workingdir /var/lib/corral --config.exposedports 3000/tcp \
  --config.label org.opencontainers.image.title=corral \
  --config.label org.opencontainers.image.version="$VERSION" \
  --config.label org.opencontainers.image.description="Self-hosted, E2B-compatible sandboxes" \
  --config.label org.opencontainers.image.licenses=Apache-2.0 \
  --config.label io.corral.build-key="$KEY"
umoci tag --image "$WORK/oci:$VERSION" latest
umoci rm --image "$WORK/oci:debian"
umoci gc --layout "$WORK/oci"

rm -rf "$OUT/oci" && mv "$WORK/oci" "$OUT/oci" && echo "$KEY" > "$OUT/key"
step "done: $OUT/oci corral:$VERSION ($(du -sh "$OUT/oci" | cut -f1))"
