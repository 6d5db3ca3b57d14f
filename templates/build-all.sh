#!/bin/sh
# Build every spec template (set-up phase: RUN steps reach the package registries only).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corral=${CORRAL:-corral}
"$here/prepare.sh"
for t in ${TEMPLATES:-media-gateway-agent media-gateway-search media-gateway-analysis content-analyzer sona-lora-updater desktop}; do
  $corral template build "$here/$t"
done
