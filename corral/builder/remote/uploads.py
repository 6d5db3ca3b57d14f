"""Files the SDK uploads for COPY steps: signed upload links, bounded bodies, confined unpacking.

The SDK asks `GET /templates/{id}/files/{hash}` whether a COPY's files are already here and, if
not, PUTs a tar (usually gzipped) of them to the link it is given, without its API key (the link
stands in for a presigned S3 URL). So the link carries its own proof: an HMAC over the template,
the hash and an expiry, with a secret that lives only in this server process.

An archive is written to a temporary file while its size is counted (over the limit -> 413), then
checked member by member before anything is unpacked: absolute names, `..`, device files, hard
links that leave the archive and archives that unpack to more than the limit are refused with a
400 naming the member; a member that would be written through a symlink is refused while
unpacking. Symlinks themselves are stored as they are and never followed here. Only then is it unpacked with tarfile's `data` filter (which also drops owners
and set-id bits) into a fresh directory that is renamed into place, so a hash directory is either
complete or absent. Each template has its own directory: one template's COPY never reads another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from corral.errors import InvalidRequest, TooLarge, Unauthorized
from corral.builder.remote.spec import FILES_HASH
from corral.templates.names import TemplateNameError, check_name

MiB = 1024 * 1024
DEFAULT_MAX_UPLOAD = 256 * MiB
DEFAULT_MAX_UNPACKED = 1024 * MiB
DEFAULT_MAX_ENTRIES = 100_000
LINK_TTL_S = 3600


def _env_mb(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) * MiB if raw.isdigit() and int(raw) > 0 else default


class UploadStore:
    def __init__(self, root: Path, *, max_upload: int | None = None, max_unpacked: int | None = None,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.root = Path(root)
        self.max_upload = max_upload or _env_mb("CORRAL_TEMPLATE_UPLOAD_MAX_MB", DEFAULT_MAX_UPLOAD)
        self.max_unpacked = max_unpacked or _env_mb("CORRAL_TEMPLATE_UNPACKED_MAX_MB", DEFAULT_MAX_UNPACKED)
        self.max_entries = max_entries
        self._secret = secrets.token_bytes(32)

    # -- where files live ----------------------------------------------------------------------

    def context_dir(self, template_id: str) -> Path:
        """The build context of one template: one subdirectory per uploaded files hash."""
        try:
            return self.root / check_name(template_id)
        except TemplateNameError as exc:
            raise InvalidRequest(str(exc)) from None

    def _hash_dir(self, template_id: str, files_hash: str) -> Path:
        if not FILES_HASH.fullmatch(files_hash):
            raise InvalidRequest("files hash must be 64 lowercase hex characters")
        return self.context_dir(template_id) / files_hash

    def present(self, template_id: str, files_hash: str) -> bool:
        return self._hash_dir(template_id, files_hash).is_dir()

    def remove_template(self, template_id: str) -> None:
        shutil.rmtree(self.context_dir(template_id), ignore_errors=True)

    # -- signed links --------------------------------------------------------------------------

    def _mac(self, template_id: str, files_hash: str, expires: int) -> str:
        msg = f"{template_id}\n{files_hash}\n{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def sign(self, template_id: str, files_hash: str, *, now: float | None = None) -> tuple[int, str]:
        expires = int((now or time.time()) + LINK_TTL_S)
        return expires, self._mac(template_id, files_hash, expires)

    def verify(self, template_id: str, files_hash: str, expires: str, signature: str) -> None:
        if not expires.isdigit() or not signature:
            raise Unauthorized("upload link is missing its signature; ask GET /templates/{id}/files/{hash} for one")
        good = self._mac(template_id, files_hash, int(expires))
        if not hmac.compare_digest(good, signature):
            raise Unauthorized("upload link signature is not valid")
        if int(expires) < time.time():
            raise Unauthorized("upload link has expired; ask for a new one")

    # -- receiving -----------------------------------------------------------------------------

    async def receive(self, template_id: str, files_hash: str, body: AsyncIterator[bytes],
                      content_length: int | None) -> bool:
        """Store one archive; False when that hash was already here (the upload is dropped)."""
        target = self._hash_dir(template_id, files_hash)
        if content_length is not None and content_length > self.max_upload:
            raise TooLarge(f"upload is {content_length} bytes; the limit is {self.max_upload}")
        incoming = self.root / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=incoming, prefix="upload-")
        archive = Path(name)
        try:
            size = 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in body:
                    size += len(chunk)
                    if size > self.max_upload:
                        raise TooLarge(f"upload is larger than the limit of {self.max_upload} bytes")
                    out.write(chunk)
            return await asyncio.to_thread(self._unpack, archive, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                archive.unlink()

    def _unpack(self, archive: Path, target: Path) -> bool:
        try:
            tar = tarfile.open(archive, mode="r:*")
        except (tarfile.TarError, OSError, EOFError):
            raise InvalidRequest("upload is not a tar archive (optionally gzipped)") from None
        with tar:
            try:
                members = self._checked_members(tar)
            except (tarfile.TarError, EOFError, OSError):
                raise InvalidRequest("upload is a truncated or corrupt tar archive") from None
            if target.is_dir():
                return False
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
            try:
                try:
                    tar.extractall(staging, members=members, filter=_keep_symlink_targets)
                except tarfile.FilterError as exc:    # its text names host paths: say it without them
                    raise InvalidRequest(f"upload could not be unpacked safely: entry {exc.tarinfo.name!r} would "
                                         "be written outside its directory (through a symlink)") from None
                except (tarfile.TarError, OSError):
                    raise InvalidRequest("upload could not be unpacked safely (corrupt archive)") from None
                os.chmod(staging, 0o755)
                try:
                    os.rename(staging, target)
                except OSError:
                    if target.is_dir():       # a concurrent upload of the same hash won
                        return False
                    raise
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        return True

    def _checked_members(self, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
        members: list[tarfile.TarInfo] = []
        total = 0
        for member in tar:
            members.append(member)
            if len(members) > self.max_entries:
                raise InvalidRequest(f"upload has more than {self.max_entries} entries")
            name = member.name
            shown = name if len(name) <= 120 else name[:117] + "..."
            if "\x00" in name or not name:
                raise InvalidRequest("upload has an entry with an empty or NUL-containing name")
            if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
                raise InvalidRequest(f"upload entry {shown!r} has an absolute path; paths must be relative")
            if ".." in name.replace("\\", "/").split("/"):
                raise InvalidRequest(f"upload entry {shown!r} leaves the build context ('..')")
            if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
                raise InvalidRequest(f"upload entry {shown!r} is not a file, directory or link")
            if member.islnk():
                # A hard link is a second name for a file: it must name one of the archive's own.
                link = member.linkname
                if link.startswith("/"):
                    raise InvalidRequest(f"upload entry {shown!r} links to an absolute path ({link!r})")
                target = os.path.normpath(link)
                if target == ".." or target.startswith("../"):
                    raise InvalidRequest(f"upload entry {shown!r} links outside the archive ({link!r})")
            total += max(member.size, 0)
            if total > self.max_unpacked:
                raise InvalidRequest(f"upload unpacks to more than {self.max_unpacked} bytes")
        return members


def _keep_symlink_targets(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's `data` filter, except that a symlink keeps its target whatever it is.

    A symlink is stored, never followed, here: the filter still resolves every *name* through
    the links unpacked before it, so nothing is written through one. Where a link may point is
    the builder's rule at COPY time (a link leaving the build context fails that step with a
    message), as for a template directory; refusing the upload would leave the SDK only a bare
    "Bad Request" to show."""
    if not member.issym():
        return tarfile.data_filter(member, dest)
    checked = tarfile.data_filter(member.replace(linkname=".", deep=False), dest)
    return checked.replace(linkname=member.linkname, deep=False)


def require_present(store: UploadStore, template_id: str, hashes: tuple[str, ...]) -> None:
    missing = [h for h in hashes if not store.present(template_id, h)]
    if missing:
        raise InvalidRequest(f"the files of a COPY step (hash {missing[0][:12]}...) were not uploaded; "
                             "upload them to the link from GET /templates/{id}/files/{hash} first")

