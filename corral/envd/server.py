"""Running the daemon as pid 1 of a sandbox: process hygiene, preloading, and uvicorn.

The runtime forks the daemon from a zygote and pivots it into the sandbox root, after which
the host's Python library is out of reach.  `preload()` therefore imports everything the
daemon could otherwise import lazily; the test suite proves it by serving with imports
disabled.  `serve()` then runs uvicorn on the already-listening socket until SIGTERM.

`serve()` also hands envd the apps for E2B's other ports (the code interpreter), which the
hand-off names by entry point (`corral.wire.constants.HOSTED_APPS`): envd resolves them without
importing the interpreter. The runtime names `serve_handoff` (and `preload`) as its payload the
same way.
"""

from __future__ import annotations

import asyncio
import ctypes
import signal
import socket
from typing import TYPE_CHECKING, Any

import uvicorn

from corral.guest.hosting import HostContext, HostedApp
from corral.wire.constants import HOSTED_PRELOADS
from corral.wire.entry_points import resolve
from corral.wire.handoff import EnvdConfig

if TYPE_CHECKING:
    from corral.envd.app import EnvdApp

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

# Keep idle HTTP connections (the server's pooled connections to this sandbox) for a long time.
KEEP_ALIVE_SECONDS = 3600
GRACEFUL_SHUTDOWN_SECONDS = 2


def _uvicorn_config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http="h11",
        loop="asyncio",
        lifespan="off",
        ws="none",
        interface="asgi3",
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=False,
    )


def preload() -> None:
    """Import every module the daemon may import later, while imports still work."""
    import base64, binascii, codecs, datetime, errno, fcntl, hashlib, hmac, json  # noqa: E401,F401
    import json.decoder, json.encoder, json.scanner  # noqa: F401
    import linecache, logging, platform, secrets, shutil, stat, struct, subprocess  # noqa: E401,F401
    import termios, traceback, urllib.parse, zlib  # noqa: E401,F401
    import concurrent.futures.thread  # noqa: F401
    import asyncio.unix_events, asyncio.selector_events  # noqa: E401,F401
    import uvicorn, uvicorn.config, uvicorn.server, uvicorn.main  # noqa: E401,F401
    import uvicorn.protocols.http.h11_impl, uvicorn.protocols.http.flow_control  # noqa: E401,F401
    import uvicorn.protocols.utils, uvicorn.loops.asyncio, uvicorn.lifespan.off  # noqa: E401,F401
    import uvicorn.middleware.message_logger  # noqa: F401
    import h11, h11._readers, h11._writers  # noqa: E401,F401

    from corral.envd import (  # noqa: F401
        app, auth, connect, creds, entries, files_http, files_route, filesystem, filesystem_rpc,
        deadline, handover, httpio, inotify, multipart, ports, process_rpc, processes, rpc, staging,
        watchers, xattrs,
    )
    from corral.guest import exitstatus, output, reaper, spawn, users  # noqa: F401

    for ref in HOSTED_PRELOADS:   # the hosted apps' own preloads (the interpreter's)
        resolve(ref)()
    # Codecs are looked up (imported) on first use.
    for name in ("utf-8", "latin-1", "ascii", "idna", "utf-16", "utf-32"):
        codecs.lookup(name)
    "x".encode("idna")
    # Resolving the uvicorn config imports the protocol, loop and lifespan classes by name.
    _uvicorn_config(lambda scope, receive, send: None).load()
    # Timestamps: strftime / fromtimestamp can pull in locale and zone data lazily.
    datetime.datetime.fromtimestamp(0, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    # Failure paths format tracebacks; the traceback module lazily imports helpers.
    try:
        raise ValueError("preload")
    except ValueError:
        traceback.format_exc()
    logging.getLogger("corral.envd")


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl failed")


def _host_apps(app: "EnvdApp", config: EnvdConfig) -> list[HostedApp]:
    """The apps named in the hand-off for other ports, resolved by name and handed to envd."""
    ctx = HostContext(env_vars=lambda: app.processes.env_vars, default_user=config.default_user,
                      default_workdir=config.default_workdir, start_languages=tuple(config.start_kernels))
    hosted: list[HostedApp] = []
    for port, ref in config.hosted_apps.items():
        one: HostedApp = resolve(ref)(ctx)
        app.host(int(port), one)
        app.on_close.append(one.close)
        hosted.append(one)
    return hosted


def serve_handoff(sock: socket.socket, config: bytes, ports_sock: socket.socket | None = None) -> None:
    """The runtime's entry point: the hand-off bytes the server wrote, then `serve`.

    No bytes (a tier used by hand, without a server): defaults, which means no access token.
    """
    serve(sock, EnvdConfig.from_bytes(config) if config else EnvdConfig(sandbox_id=socket.gethostname()),
          ports_sock)


def serve(sock: socket.socket, config: EnvdConfig, ports_sock: socket.socket | None = None) -> None:
    """Serve the envd app on `sock` until SIGTERM; reaps every child, including orphans."""
    from corral.envd import ports
    from corral.envd.app import create_app
    from corral.guest import reaper

    # Sandbox processes (even as sandbox root) must not read our memory (token) via /proc.
    _prctl(PR_SET_DUMPABLE, 0)
    # Orphans of our children come back to us even when we are not pid 1 (development, tests).
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    reaper.REAP_ALL = True

    app = create_app(config)
    hosted = _host_apps(app, config)
    server = _Server(_uvicorn_config(app))

    def end_sandbox() -> None:
        # The deadline passed: stop serving without waiting for open streams; `app.close()`
        # below kills what we started, and returning ends pid 1 and with it the sandbox.
        server.should_exit = True
        server.force_exit = True
        if server._exit is not None:
            server._exit.set()

    app.deadline.on_expire = end_sandbox
    # uvicorn re-raises the captured signal after shutdown with the previous handler; make that a
    # no-op so we get to clean up and return instead of dying by SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reaper.reaper_for(loop)  # install SIGCHLD handling before anything can be spawned
        app.deadline.start(loop)
        # File operations must keep working when the sandbox hits its pids limit, so their worker
        # threads exist from the start (the call does not wait for them).
        app.executor.prestart(2)
        for one in hosted:   # warm start: the first cell does not wait for a kernel
            one.start()
        if ports_sock is not None:
            await ports.serve(ports_sock)
        try:
            await server.serve(sockets=[sock])
        finally:
            app.close()
            reaper.reaper_for(loop).reap()

    asyncio.run(main())


class _Server(uvicorn.Server):
    """uvicorn's Server without its 10 Hz housekeeping tick, so an idle daemon stays asleep."""

    _exit: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._exit = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if not self.should_exit:
            await self._exit.wait()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        if self._exit is not None:
            self._loop.call_soon_threadsafe(self._exit.set)
