"""uvicorn's HTTP protocol with one addition: the app may reset the client's connection.

When a sandbox dies in the middle of a streamed response (killed while a command runs, or at the
end of its life), the proxy cannot finish the response. Closing the connection normally (FIN)
makes the client see a truncated body, which the SDK reads as a protocol error from the server.
E2B's edge resets the stream instead; the SDK reads a reset as "the connection to the sandbox
dropped", asks the sandbox's health, and raises the error that says the sandbox was killed. This
protocol puts `scope["extensions"]["corral.reset"]` in every HTTP scope: calling it aborts the
client's TCP connection with a reset (SO_LINGER 0).
"""

from __future__ import annotations

import socket
import struct

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

RESET_EXTENSION = "corral.reset"


class ResettableHttpToolsProtocol(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {**self.scope.get("extensions", {}), RESET_EXTENSION: self._reset}  # type: ignore[typeddict-unknown-key]

    def _reset(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.transport.abort()
