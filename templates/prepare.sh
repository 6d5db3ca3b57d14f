#!/bin/sh
# Place the host's PyTorch CPU wheel into the build contexts that install torch, so their builds
# never download a CUDA build. pip itself finds the file (its find-links), we only copy it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
wheel=$(ls /opt/wheels/torch-2.13.0+cpu-cp311-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  mkdir -p /tmp/corral-torch && pip download --no-deps --only-binary=:all: torch==2.13.0 -d /tmp/corral-torch -q
  wheel=$(ls /tmp/corral-torch/torch-2.13.0*cp311*.whl | head -n1)
fi
for t in media-gateway-agent media-gateway-search sona-lora-updater; do
  mkdir -p "$here/$t/wheels"
  [ -f "$here/$t/wheels/$(basename "$wheel")" ] || cp "$wheel" "$here/$t/wheels/"
done
