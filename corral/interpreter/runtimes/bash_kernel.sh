# corral's Bash kernel: `bash --noprofile --norc -c <this text>`.
#
# One long-lived shell runs every cell with `eval`, so variables, functions, aliases and the
# working directory persist. Protocol: one request a line on stdin, "<base64 code> <base64 env>"
# (env = NUL-separated KEY=VALUE pairs); events go to fd 3 as JSON lines. A cell's stdin is
# /dev/null so it can never read the protocol. SIGINT (sent to the whole session) kills the
# running command, and the INT trap returns from the cell's function, skipping the rest of it.
__corral_run() {
  trap 'trap - INT; return 130' INT
  eval "$1"
}
__corral_loop() {
  local __corral_req_code __corral_req_env __corral_code __corral_status __corral_kv __corral_key
  local -a __corral_saved __corral_unset
  while IFS=' ' read -r __corral_req_code __corral_req_env; do
    [ -z "$__corral_req_code" ] && continue
    __corral_code=$(printf '%s' "$__corral_req_code" | base64 -d)
    __corral_saved=()
    __corral_unset=()
    if [ -n "$__corral_req_env" ]; then
      while IFS= read -r -d '' __corral_kv; do
        __corral_key=${__corral_kv%%=*}
        [[ "$__corral_key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        if [ -n "${!__corral_key+set}" ]; then
          __corral_saved+=("$__corral_key=${!__corral_key}")
        else
          __corral_unset+=("$__corral_key")
        fi
        export "$__corral_kv"
      done < <(printf '%s' "$__corral_req_env" | base64 -d)
    fi
    __corral_run "$__corral_code" </dev/null
    __corral_status=$?
    trap - INT
    for __corral_kv in "${__corral_saved[@]}"; do export "$__corral_kv"; done
    for __corral_key in "${__corral_unset[@]}"; do unset "$__corral_key"; done
    if [ "$__corral_status" -eq 130 ]; then
      printf '{"type":"error","name":"KeyboardInterrupt","value":"Execution interrupted","traceback":""}\n' >&3
    elif [ "$__corral_status" -ne 0 ]; then
      printf '{"type":"error","name":"ExitCodeError","value":"exit status %d","traceback":""}\n' "$__corral_status" >&3
    fi
    printf '{"type":"done","status":%d}\n' "$__corral_status" >&3
  done
}
trap '' INT
printf '{"type":"ready"}\n' >&3
__corral_loop
