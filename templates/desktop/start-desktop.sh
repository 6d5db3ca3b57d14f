#!/bin/sh
# Start the screen the e2b-desktop SDK would start (Xvfb at 1024x768x24 on $DISPLAY, default :0)
# and an XFCE session on it, for code that drives the desktop without the SDK. Idempotent.
set -eu
DISPLAY=${DISPLAY:-:0}
export DISPLAY
if ! xdpyinfo >/dev/null 2>&1; then
  Xvfb "$DISPLAY" -ac -screen 0 1024x768x24 -nolisten tcp >/tmp/xvfb.log 2>&1 &
  for _ in $(seq 1 200); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.05; done
fi
if ! pgrep -x xfwm4 >/dev/null; then
  startxfce4 >/tmp/xfce4.log 2>&1 &
  for _ in $(seq 1 200); do pgrep -x xfwm4 >/dev/null && break; sleep 0.1; done
fi
