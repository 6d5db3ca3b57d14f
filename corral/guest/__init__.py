"""Code that runs inside a sandbox and that both envd and the interpreter use.

- `users`: the sandbox's accounts, read from its own /etc/passwd and /etc/group.
- `reaper`: one SIGCHLD-driven reaper for a daemon that is pid 1 of its sandbox.
- `exitstatus`: a wait status as E2B's envd reports it.
- `spawn`: starting a process as a sandbox user, in its own session, with its environment.
- `output`: reading a child's pipes (or pty) in the event loop, chunk by chunk.
- `limits`: user processes get less than the daemon (the user cgroup, an ordinary OOM score,
  process slots taken back from ended commands, gVisor's memory watchdog).

It imports nothing from envd or the interpreter, so neither has to import the other; and like
them it never imports the server side (it may use `corral.wire` and `corral.errors`).
"""
