#!/usr/bin/env bash
# Install the gVisor runsc that corral's gvisor tier uses by default, from one pinned Debian
# package (bookworm-backports' 20240729 build), checked against its SHA256, into a path corral
# owns. Nothing else on the machine changes: no apt source, no pin, no dpkg database entry, so
# Debian 12 and Ubuntu alike keep their own apt state (docs/SECURITY.md says why this and not
# bookworm-backports). CORRAL_RUNSC still overrides the binary at run time.
#
#   scripts/install-runsc.sh [DEST]     (default /usr/local/lib/corral/runsc; run as root)
set -euo pipefail

VERSION="0.0~20240729.0-4~bpo12+2"
DEB="runsc_${VERSION}_amd64.deb"
URL="${CORRAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}/pool/main/g/golang-gvisor-gvisor/${DEB}"
SHA256="afdde883e3876ea807e19c708d4432674a20cb10186a7a5b554d62f38ea8de46"
DEST="${1:-/usr/local/lib/corral/runsc}"

# (the output is read whole: with pipefail, `grep -q` closing the pipe early would fail the check)
have="$([ -x "$DEST" ] && "$DEST" --version 2>/dev/null || true)"
if printf '%s\n' "$have" | grep -qx "runsc version ${VERSION%%-*}"; then
  echo "runsc: ${VERSION} present at $DEST"
  exit 0
fi
if [ "$(uname -m)" != x86_64 ]; then
  echo "runsc: no pinned build for $(uname -m); set CORRAL_RUNSC to a runsc of your own" >&2
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "runsc: fetching ${DEB}"
curl -fsSL --retry 3 -o "$tmp/$DEB" "$URL"
echo "${SHA256}  $tmp/$DEB" | sha256sum -c --quiet - || { echo "runsc: SHA256 mismatch for $URL" >&2; exit 1; }
dpkg-deb -x "$tmp/$DEB" "$tmp/x"
install -d -m 0755 "$(dirname "$DEST")"
install -m 0755 -o root -g root "$tmp/x/usr/bin/runsc" "$DEST.new"
mv -f "$DEST.new" "$DEST"
echo "runsc: installed $("$DEST" --version | head -1) at $DEST"
