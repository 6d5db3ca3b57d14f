#!/bin/sh
# Start a virtual screen and a window manager on $DISPLAY (default :99); idempotent.
set -eu
DISPLAY=${DISPLAY:-:99}
export DISPLAY
if ! xdpyinfo >/dev/null 2>&1; then
  Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >/tmp/xvfb.log 2>&1 &
  for _ in $(seq 1 100); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.05; done
  matchbox-window-manager -use_titlebar no >/tmp/wm.log 2>&1 &
fi
