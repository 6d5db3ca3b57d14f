"""`GET /files` (download) and `POST /files` (upload), with the requesting user's permissions.

A new file is written in place; an existing one is streamed to an anonymous staged copy first and
rewritten in place only after the whole request was received, so a failed or oversized upload
never destroys the file it would have replaced, and a watcher sees what E2B's envd makes it see
(events on the file's own name, no temporary names). The file's `X-Metadata-*` headers become its
`user.e2b.*` attributes (`xattrs`).  The size limit counts decompressed bytes, so a small gzip bomb is
refused as well as a large body.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import urllib.parse
import zlib
from dataclasses import dataclass

from corral.envd import staging, xattrs
from corral.envd.creds import UserExecutor
from corral.errors import CorralError
from corral.envd.httpio import BodyTooLarge, Request
from corral.envd.multipart import MultipartError, MultipartParser, PartData, PartEnd, PartStart, parse_header_params
from corral.guest.users import User, resolve_path

READ_CHUNK = 256 * 1024
DECOMPRESS_CHUNK = 1024 * 1024
# Multipart framing (boundaries, part headers) on top of the file bytes themselves.
MULTIPART_OVERHEAD = 1024 * 1024


class HTTPFailure(CorralError):
    """A /files failure answered with `status` and a JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status=status)


def _os_failure(exc: OSError, path: str) -> HTTPFailure:
    status = {
        errno.ENOENT: 404,
        errno.EACCES: 403,
        errno.EPERM: 403,
        errno.EROFS: 403,
        errno.ENOSPC: 507,
        errno.EDQUOT: 507,
        errno.EISDIR: 400,
        errno.ENOTDIR: 400,
        errno.ENAMETOOLONG: 400,
        errno.ELOOP: 400,
        errno.EINVAL: 400,
        errno.EEXIST: 400,
        errno.EOPNOTSUPP: 400,   # metadata on a filesystem without user extended attributes
    }.get(exc.errno or 0, 500)
    return HTTPFailure(status, f"{path}: {exc.strerror or exc}")


# ------------------------------------------------------------------ download

def _open_for_read(path: str) -> tuple[int, int]:
    # O_NONBLOCK so a FIFO cannot hang the worker in open(); only regular files are served.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise HTTPFailure(400, f"path '{path}' is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise HTTPFailure(400, f"path '{path}' is not a regular file")
        os.set_blocking(fd, True)
        return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise


async def download(req: Request, user: User, executor: UserExecutor, path_param: str,
                   workdir: str | None) -> None:
    path = resolve_path(path_param, user, workdir)
    try:
        fd, size = await executor.run(user, _open_for_read, path)
    except OSError as exc:
        raise _os_failure(exc, path) from None
    try:
        name = os.path.basename(path)
        await req.start_response(200, [
            ("content-type", "application/octet-stream"),
            ("content-length", str(size)),
            ("content-disposition", f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}"),
        ])
        remaining = size
        while remaining > 0:
            chunk = await executor.run(None, os.read, fd, min(READ_CHUNK, remaining))
            if not chunk:
                break  # the file shrank while we sent it; the client sees a short body
            remaining -= len(chunk)
            await req.send_body(chunk, True)
        await req.send_body(b"", False)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ upload

@dataclass
class _Pending:
    """One file of an upload. A new file is written in place (`staged` is None) and removed again
    if the upload fails; an existing file is replaced only at commit, from an anonymous staged copy
    (O_TMPFILE), so a failed upload leaves it as it was."""
    target: str
    fd: int
    staged: bool
    closed: bool = False


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


def _touch_owner(fd: int) -> None:
    # envd chowns every uploaded file to the requesting user. The file already belongs to that
    # user here (it was created in the user's identity), so this changes nothing on disk, but it
    # makes watchers see the same inotify sequence E2B's envd produces: CREATE, CHMOD, WRITE.
    st = os.fstat(fd)
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except PermissionError:
        pass   # writing a group-writable file of another user: its owner stays, as it should


def _stage(parent: str, base: str) -> int:
    """An unnamed file on the target's filesystem; it vanishes by itself if we never commit."""
    try:
        fd = os.open(parent, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise
    else:
        staging.hide(parent, fd)
        return fd
    # A filesystem without O_TMPFILE: a named file, unlinked at once.
    tmp = os.path.join(parent, f".{base[:180]}.corral-upload-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    os.unlink(tmp)
    return fd


def _open_target(target: str, metadata: dict[str, str]) -> tuple[int, bool]:
    parent = os.path.dirname(target) or "/"
    os.makedirs(parent, exist_ok=True)
    try:
        if stat.S_ISDIR(os.stat(target).st_mode):
            raise HTTPFailure(400, f"path '{target}' is a directory")
    except FileNotFoundError:
        try:
            fd = os.open(target, _NEW_FILE, 0o666)
        except FileExistsError:
            pass   # created meanwhile, or a dangling symlink: replace it at commit like any file
        else:
            try:
                _touch_owner(fd)
                xattrs.replace(fd, metadata)
            except BaseException:
                os.close(fd)
                os.unlink(target)
                raise
            return fd, False
    return _stage(parent, os.path.basename(target)), True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy(src: int, dst: int) -> None:
    os.lseek(src, 0, os.SEEK_SET)
    try:
        while os.copy_file_range(src, dst, 1 << 30):
            pass
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)
    while chunk := os.read(src, READ_CHUNK):
        _write_all(dst, chunk)


def _commit(pending: list[_Pending], metadata: dict[str, str]) -> None:
    """Replace each existing target with its staged bytes, in place (the file keeps its inode,
    owner and mode, as with envd, and watchers see WRITE events on its own name)."""
    for p in pending:
        if not p.staged:
            continue
        try:
            fd = os.open(p.target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        except PermissionError:
            _replace_by_rename(p, metadata)
            continue
        try:
            _touch_owner(fd)
            xattrs.replace(fd, metadata)
            _copy(p.fd, fd)
        finally:
            os.close(fd)


def _replace_by_rename(p: _Pending, metadata: dict[str, str]) -> None:
    """A file the user may not write but may replace (someone else's file in the user's own
    directory, as `mv` would): copy the staged bytes to a new name beside it, rename that over.
    Only in this case does a watcher see a temporary name."""
    mode = stat.S_IMODE(os.stat(p.target).st_mode) & 0o777
    tmp = os.path.join(os.path.dirname(p.target), f".{os.path.basename(p.target)[:180]}.corral-upload-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            _copy(p.fd, fd)
            os.fchmod(fd, mode)
            xattrs.replace(fd, metadata)
        finally:
            os.close(fd)
        os.rename(tmp, p.target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _discard(pending: list[_Pending]) -> None:
    for p in pending:
        if not p.staged:
            try:
                os.unlink(p.target)
            except OSError:
                pass


class _Upload:
    """State of one POST /files: the files being written and the byte budget left."""

    def __init__(self, user: User, executor: UserExecutor, limit: int, workdir: str | None,
                 metadata: dict[str, str]) -> None:
        self.user = user
        self.executor = executor
        self.limit = limit
        self.workdir = workdir
        self.metadata = metadata
        self.written = 0
        self.pending: list[_Pending] = []
        self.current: _Pending | None = None

    async def open(self, raw_path: str) -> None:
        target = resolve_path(raw_path, self.user, self.workdir)
        if any(p.target == target for p in self.pending):
            raise HTTPFailure(400, f"duplicate upload target '{target}'")
        try:
            fd, staged = await self.executor.run(self.user, _open_target, target, self.metadata)
        except OSError as exc:
            raise _os_failure(exc, target) from None
        self.current = _Pending(target, fd, staged)
        self.pending.append(self.current)

    async def write(self, data: bytes) -> None:
        if self.current is None or not data:
            return
        self.written += len(data)
        if self.written > self.limit:
            raise HTTPFailure(413, f"upload exceeds the limit of {self.limit} bytes")
        try:
            await self.executor.run(None, _write_all, self.current.fd, data)
        except OSError as exc:
            raise _os_failure(exc, self.current.target) from None

    async def close_current(self) -> None:
        # Staged files stay open until commit: their bytes live only behind the descriptor.
        if self.current is not None and not self.current.closed and not self.current.staged:
            self.current.closed = True
            try:
                await self.executor.run(None, os.close, self.current.fd)
            except OSError as exc:  # NFS-style delayed write errors (ENOSPC) surface here
                raise _os_failure(exc, self.current.target) from None
        self.current = None

    async def commit(self) -> list[dict[str, object]]:
        await self.close_current()
        try:
            await self.executor.run(self.user, _commit, self.pending, self.metadata)
        except OSError as exc:
            raise _os_failure(exc, "replace") from None
        finally:
            self._close_staged()
        done: list[dict[str, object]] = []
        for p in self.pending:
            doc: dict[str, object] = {"name": os.path.basename(p.target), "type": "file", "path": p.target}
            if self.metadata:
                doc["metadata"] = dict(self.metadata)
            done.append(doc)
        self.pending = []
        return done

    def _close_staged(self) -> None:
        for p in self.pending:
            if p.staged and not p.closed:
                p.closed = True
                os.close(p.fd)

    async def abort(self) -> None:
        for p in self.pending:
            if not p.closed:
                p.closed = True
                os.close(p.fd)
        self.current = None
        if self.pending:
            await self.executor.run(self.user, _discard, self.pending)
        self.pending = []


async def _body_chunks(req: Request, gzip: bool, raw_limit: int):
    """Yield the request body, gunzipped if needed, in bounded pieces."""
    length = req.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > raw_limit:
        raise HTTPFailure(413, f"upload exceeds the limit of {raw_limit} bytes")
    received = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    async for chunk in req.iter_body():
        received += len(chunk)
        if received > raw_limit:
            raise HTTPFailure(413, f"upload exceeds the limit of {raw_limit} bytes")
        if inflater is None:
            yield chunk
            continue
        data = chunk
        while data:
            try:
                out = inflater.decompress(data, DECOMPRESS_CHUNK)
            except zlib.error as exc:
                raise HTTPFailure(400, f"invalid gzip body: {exc}") from None
            data = inflater.unconsumed_tail
            if out:
                yield out
            if inflater.eof:
                break
    if inflater is not None and not inflater.eof:
        raise HTTPFailure(400, "truncated gzip body")


async def upload(req: Request, user: User, executor: UserExecutor, limit: int,
                 workdir: str | None) -> list[dict[str, object]]:
    content_type = req.headers.get("content-type", "")
    kind, params = parse_header_params(content_type)
    kind = kind.lower()
    encoding = req.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise HTTPFailure(400, f"unsupported content-encoding {encoding!r}")
    gzip = encoding == "gzip"
    path_param = req.query_value("path")
    try:
        metadata = xattrs.from_headers([(k.decode("latin-1"), v.decode("latin-1"))
                                        for k, v in req.scope.get("headers", [])])
    except xattrs.MetadataError as exc:
        raise HTTPFailure(400, str(exc)) from None
    state = _Upload(user, executor, limit, workdir, metadata)
    try:
        if kind == "multipart/form-data":
            await _upload_multipart(req, state, params.get("boundary", ""), path_param, gzip)
        elif kind in ("application/octet-stream", ""):
            if not path_param:
                raise HTTPFailure(400, "the path query parameter is required for octet-stream uploads")
            await state.open(path_param)
            async for chunk in _body_chunks(req, gzip, limit):
                await state.write(chunk)
        else:
            raise HTTPFailure(400, f"unsupported content-type {kind!r}")
        if not state.pending:
            raise HTTPFailure(400, "no file in the upload")
        return await state.commit()
    except (MultipartError, BodyTooLarge) as exc:
        await state.abort()
        if isinstance(exc, BodyTooLarge):
            raise HTTPFailure(413, "upload too large") from None
        raise HTTPFailure(400, f"invalid multipart body: {exc}") from None
    except BaseException:
        await state.abort()
        raise


async def _upload_multipart(req: Request, state: _Upload, boundary: str, path_param: str | None,
                            gzip: bool) -> None:
    parser = MultipartParser(boundary)
    in_file = False
    files = 0
    async for chunk in _body_chunks(req, gzip, state.limit + MULTIPART_OVERHEAD):
        for event in parser.feed(chunk):
            if isinstance(event, PartStart):
                in_file = event.name == "file"
                if not in_file:
                    continue  # envd ignores other form fields
                files += 1
                if path_param and files > 1:
                    raise HTTPFailure(400, "the path query parameter allows a single file only")
                target = path_param or event.filename
                if not target:
                    raise HTTPFailure(400, "a file part has no filename and no path was given")
                await state.open(target)
            elif isinstance(event, PartData):
                if in_file:
                    await state.write(event.data)
            elif isinstance(event, PartEnd):
                if in_file:
                    await state.close_current()
                in_file = False
    parser.close()
