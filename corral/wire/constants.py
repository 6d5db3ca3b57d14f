"""Names both sides of the host↔sandbox seam must agree on, defined once.

The server (api, lifecycle, runtime) and the in-sandbox daemon import these from here, so a
port, a socket name or a server-only path can never drift between the two sides.
"""

from __future__ import annotations

import re

# The envd protocol version we speak. The SDK gates features on it (see docs/COMPATIBILITY.md).
ENVD_VERSION = "0.6.4"

# E2B's ports: envd (process, filesystem, /files) and the code interpreter.
ENVD_PORT = 49983
INTERPRETER_PORT = 49999

# Sockets in a sandbox's host-side workdir, bound by the sandbox's init before it pivots.
ENVD_SOCKET = "envd.sock"      # envd's HTTP server (and, by port header, the interpreter's)
PORTS_SOCKET = "ports.sock"    # raw tunnels to the sandbox's own TCP ports (exposed ports)

# Server-only routes: the proxy refuses every path under this prefix, so only the host side
# (which holds the socket) reaches them, and only with the token the daemon currently has.
SERVER_ONLY_PREFIX = "/.corral/"
INIT_PATH = SERVER_ONLY_PREFIX + "init"   # hand a pooled sandbox to its owner
DEADLINE_PATH = SERVER_ONLY_PREFIX + "deadline"   # move (or clear) the sandbox's own end time

# How long after the server's own deadline the sandbox ends itself: a live server always acts
# first (kill, or pause for `on_timeout: pause`); the sandbox's deadline is the backstop that
# holds when no server is left (see docs/SECURITY.md, "Deadlines without a server").
SELF_END_GRACE_S = 2.0
SELF_END_GRACE_PAUSE_S = 60.0

# The in-sandbox daemon as a runtime payload, by import path only (see corral.runtime.base.Payload):
# (entry point, what to preload before forking, the init's process name).
ENVD_PAYLOAD = ("corral.envd.server:serve_handoff", ("corral.envd.server:preload",), "envd")

# Apps envd serves for other E2B ports, by port: factories that take a
# `corral.guest.hosting.HostContext` and return a `HostedApp`; their modules' preloads run with
# envd's. envd resolves them by name, so it never imports the interpreter.
HOSTED_APPS = {str(INTERPRETER_PORT): "corral.interpreter.hosted:create_hosted"}
HOSTED_PRELOADS = ("corral.interpreter:preload",)

# Sandbox ids follow E2B's shape (`[a-z0-9]{20}` when we make them). The SDK and host-based
# routing (`{port}-{id}.{domain}`) depend on it: no `-` or `.` may ever appear in one, and names
# built from an id end up in paths, cgroups, nft scripts and device names. Always check with
# `is_sandbox_id` (a full match: `$` alone would accept a trailing newline).
SANDBOX_ID_RE = re.compile(r"[a-z0-9]{1,64}")


def is_sandbox_id(value: object) -> bool:
    return isinstance(value, str) and SANDBOX_ID_RE.fullmatch(value) is not None

# What a tier hands its daemon, in the init's environment, so user processes get less than the
# daemon (see corral.guest.limits): descriptors of the user child cgroup's `cgroup.procs` files
# (comma-separated; opened by the host, so the sandbox never sees the cgroup tree) and that
# cgroup's pids limit.
USER_CGROUP_FDS_ENV = "CORRAL_USER_CGROUP_FDS"
USER_PIDS_MAX_ENV = "CORRAL_USER_PIDS_MAX"
# Where no pids cgroup can hold user processes (gVisor's cgroupfs has none): RLIMIT_NPROC for them.
USER_NPROC_ENV = "CORRAL_USER_NPROC"
# oom_score_adj of the daemon (pid 1): the OOM killer takes any user process first. Not -1000,
# which would make it unkillable and let user processes (which inherit the floor) be so too.
DAEMON_OOM_SCORE_ADJ = -999
