"""Names of the anonymous files uploads are staged in, which watchers must not report.

An existing file is replaced from a staged copy made with O_TMPFILE in its own directory. Such a
file has no name, but the kernel still reports writes to it to that directory's inotify watches,
under the made-up name `#<inode>`. Uploads record those paths here, and watchers drop events for
them, so a watcher sees only what the write did to the file itself (as with E2B's envd). The
record is bounded and forgets the oldest first: events can be read after the upload ended.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

_KEEP = 4096
_hidden: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()


def hide(directory: str, fd: int) -> None:
    """Record the O_TMPFILE `fd`, created in `directory`, as one watchers do not report."""
    path = os.path.join(directory, f"#{os.fstat(fd).st_ino}")
    with _lock:
        _hidden[path] = None
        _hidden.move_to_end(path)
        while len(_hidden) > _KEEP:
            _hidden.popitem(last=False)


def is_hidden(path: str) -> bool:
    return path in _hidden
