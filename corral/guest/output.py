"""Reading a child's pipe or pty master in the event loop, one chunk per wake-up.

Both envd's processes and the interpreter's kernels stream output this way: the fd is
non-blocking and watched with `loop.add_reader`, so a chatty process never blocks the daemon and
an idle one costs nothing. End of output is EOF, or EIO on a pty master once the slave side is
closed; any other read error also ends the stream, since the pipe is no longer usable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

READ_CHUNK = 64 * 1024


class OutputReader:
    """Hands each chunk read from `fd` to `on_data`, and calls `on_eof` once at the end.

    `close_fd=False` leaves the fd open at the end (a pty master is also the process's input).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, on_data: Callable[[bytes], None],
                 on_eof: Callable[[], None] | None = None, *, close_fd: bool = True) -> None:
        self.loop = loop
        self.fd = fd
        self._on_data = on_data
        self._on_eof = on_eof
        self._close_fd = close_fd
        self.open = True
        os.set_blocking(fd, False)
        loop.add_reader(fd, self.read)

    def read(self) -> bool:
        """Read one chunk; True if it carried data (more may follow)."""
        if not self.open:
            return False
        try:
            data = os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return False
        except OSError:   # EIO: the pty's slave side is closed, i.e. end of output
            data = b""
        if data:
            self._on_data(data)
            return True
        self.close()
        if self._on_eof is not None:
            self._on_eof()
        return False

    def drain(self) -> None:
        """Read what is already buffered, without waiting for more."""
        while self.read():
            pass

    def close(self) -> None:
        """Stop reading (no `on_eof`); closes the fd unless told not to."""
        if not self.open:
            return
        self.open = False
        try:
            self.loop.remove_reader(self.fd)
        except (ValueError, RuntimeError):
            pass
        if self._close_fd:
            try:
                os.close(self.fd)
            except OSError:
                pass
