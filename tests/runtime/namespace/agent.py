"""A tiny command agent run as a test sandbox's pid 1 (instead of envd).

Executed inside the sandbox by the template's own python3, it accepts connections on the
listening socket the tier created (fd in CORRAL_LISTEN_FD; its configuration bytes are on
CORRAL_CONFIG_FD) and runs one command per
connection: request and reply are one JSON line each. It only uses the standard library of
the template's Python, so it also works before envd exists.
"""

AGENT_SOURCE = r'''
import json, os, socket, subprocess, signal, sys, threading
if "CORRAL_CONFIG_FD" in os.environ:
    # The payload configuration (an EnvdConfig) on an inherited fd: start again with its env vars
    # in our environment, as envd gives them to the processes it starts. The token stays out.
    with os.fdopen(int(os.environ.pop("CORRAL_CONFIG_FD")), "rb") as f:
        config = json.loads(f.read() or b"{}")
    os.execve(sys.executable, sys.orig_argv, dict(os.environ, **config.get("env_vars", {})))
listener = socket.socket(fileno=int(os.environ["CORRAL_LISTEN_FD"]))

def reap(*_):
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass

def handle(conn):
    with conn:
        f = conn.makefile("rwb")
        req = json.loads(f.readline())
        uid = req.get("uid", 0)
        def demote():
            os.setsid()
            if uid:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
        try:
            p = subprocess.run(req["argv"], input=req.get("stdin", "").encode(),
                               capture_output=True, timeout=req.get("timeout", 60),
                               preexec_fn=demote, cwd=req.get("cwd", "/"),
                               env={"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                                    "HOME": "/root" if not uid else "/home/user"})
            out = {"rc": p.returncode, "stdout": p.stdout.decode(errors="replace"),
                   "stderr": p.stderr.decode(errors="replace")}
        except subprocess.TimeoutExpired:
            out = {"rc": None, "stdout": "", "stderr": "timeout"}
        except Exception as exc:
            out = {"rc": None, "stdout": "", "stderr": repr(exc)}
        f.write((json.dumps(out) + "\n").encode())
        f.flush()

while True:
    conn, _ = listener.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
'''

AGENT_ARGV = ["/usr/bin/python3", "-I", "-c", AGENT_SOURCE]
