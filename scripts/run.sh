#!/usr/bin/env bash
# `make run`: start corral in the foreground, prove it works with the official E2B SDK, and print
# the three exports that point existing E2B code at it. Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-3000}
DATA=${DATA:-.data}
VENV=${VENV:-.venv}
URL="http://$HOST:$PORT"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (corral serve needs namespaces, cgroups and mounts)"
if curl -s -o /dev/null --max-time 1 "$URL/health"; then
  die "something already answers on $URL; stop it or use: make run PORT=3001"
fi

# One key per data dir, kept across runs so that exported settings keep working.
mkdir -p "$DATA"
KEY_FILE="$DATA/make-run.key"
if [ ! -s "$KEY_FILE" ]; then
  (umask 077; "$VENV/bin/python" -c 'import secrets; print("e2b_" + secrets.token_hex(20))' > "$KEY_FILE")
fi
CORRAL_API_KEY=$(cat "$KEY_FILE")
export CORRAL_API_KEY

say "starting corral serve on $URL (data dir $DATA, log $DATA/serve.log)"
"$VENV/bin/corral" serve --host "$HOST" --port "$PORT" --data-dir "$DATA" >"$DATA/serve.log" 2>&1 &
SERVER=$!

# A development server's sandboxes die with it: kill every running or paused one first
# (a plain `corral serve` leaves them running for a restart to re-adopt).
kill_sandboxes() {
  "$VENV/bin/python" - "$URL" "$CORRAL_API_KEY" <<'PY' || true
import sys, httpx
url, key = sys.argv[1], sys.argv[2]
headers = {"X-API-Key": key}
try:
    listed = httpx.get(url + "/v2/sandboxes", headers=headers, params={"state": "running,paused"}, timeout=10).json()
except (httpx.HTTPError, ValueError):
    sys.exit(0)
for sbx in listed:
    sid = sbx.get("sandboxID")
    try:
        httpx.delete(f"{url}/sandboxes/{sid}", headers=headers, timeout=30)
        print(f"killed sandbox {sid}")
    except httpx.HTTPError as exc:
        print(f"could not kill sandbox {sid}: {exc}", file=sys.stderr)
PY
}

stop() {
  trap - INT TERM EXIT
  if kill -0 "$SERVER" 2>/dev/null; then
    say "killing the development server's sandboxes"
    kill_sandboxes
    say "stopping corral serve (pid $SERVER)"
    kill -TERM "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    sed -n '/^corral stopped/,$p' "$DATA/serve.log" | grep -E '^corral stopped|^  [a-z0-9]+  ' || true
  fi
  say "corral stopped"
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

for _ in $(seq 1 300); do
  if curl -fs -o /dev/null --max-time 1 "$URL/health"; then break; fi
  kill -0 "$SERVER" 2>/dev/null || { tail -n 30 "$DATA/serve.log" >&2; die "corral serve exited during start-up"; }
  sleep 0.1
done
curl -fs -o /dev/null --max-time 1 "$URL/health" || { tail -n 30 "$DATA/serve.log" >&2; die "no /health answer from $URL"; }
say "corral is up"

export E2B_API_KEY="$CORRAL_API_KEY" E2B_API_URL="$URL" E2B_SANDBOX_URL="$URL"
say "running examples/demo.py with the official e2b SDK"
if ! "$VENV/bin/python" examples/demo.py; then
  tail -n 30 "$DATA/serve.log" >&2
  die "the demo failed (server log above)"
fi

# The Media Gateway layer (docs/MEDIA_GATEWAY.md): one query through the orchestrator, each agent
# in its own sandbox from the spec's templates, with a short report of agents, times and
# sandbox-seconds.
say "Media Gateway: the orchestrator on one query (discovery and search in parallel, then recommendation)"
if ! "$VENV/bin/corral" agents orchestrate "sci-fi like Stranger Things" --user u01; then
  tail -n 30 "$DATA/serve.log" >&2
  die "the Media Gateway demo failed (server log above)"
fi

cat <<MSG

Point existing E2B code at this server with:

  export E2B_API_KEY=$CORRAL_API_KEY
  export E2B_API_URL=$URL
  export E2B_SANDBOX_URL=$URL

corral is serving in the foreground (log: $DATA/serve.log). Press Ctrl-C to stop it.
MSG
wait "$SERVER"
