"""The stateful code interpreter served inside the sandbox (E2B's port 49999 protocol).

`create_app(config)` gives the Starlette app; `preload()` imports everything it may import
later, because it runs in the daemon after pivot_root, where the host's Python library is gone.
"""

from __future__ import annotations


def preload() -> None:
    """Import every module the interpreter may import lazily, while imports still work."""
    import base64, codecs, json, queue, secrets, shutil, socket, tempfile, uuid  # noqa: E401,F401
    import importlib.util  # noqa: F401

    import zmq, zmq.asyncio, zmq.backend, zmq.sugar  # noqa: E401,F401
    import jupyter_client.asynchronous.client  # noqa: F401
    import jupyter_client.channels, jupyter_client.session, jupyter_client.adapter  # noqa: E401,F401
    import jupyter_client.jsonutil, jupyter_client.client  # noqa: E401,F401
    import starlette.applications, starlette.routing, starlette.requests  # noqa: E401,F401
    import starlette.responses, starlette.middleware.errors, starlette.middleware.exceptions  # noqa: E401,F401
    import starlette.formparsers  # noqa: F401

    from corral.interpreter import (  # noqa: F401
        app, contexts, events, hosted, jupyter, kernel, languages, launch, pipes,
    )

    # A session signs and parses a message without any socket: this resolves traitlets defaults
    # and the lazy imports behind them. No zmq context is made here: this may run in a zygote
    # that forks later, and a zmq context does not survive a fork.
    from jupyter_client.session import Session

    session = Session(key=b"preload")
    frames = session.serialize(session.msg("kernel_info_request", {}))
    session.deserialize(session.feed_identities(frames[1:] if frames[0] == b"" else frames)[1])
    from jupyter_client.asynchronous.client import AsyncKernelClient  # noqa: F401
    json.dumps(events.result({"text/plain": "1"}, True))
    codecs.getincrementaldecoder("utf-8")
    create_app()


def create_app(config=None):  # type: ignore[no-untyped-def]
    from corral.interpreter.app import create_app as _create

    return _create(config)
