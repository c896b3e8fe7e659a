"""Writing workflow files into the workflow folder for the API: validation before a write,
atomic replace, delete, and reading the current bytes safely.

The caller has checked the key (`handlers.keys`): relative, not hidden, `*.toml`, resolving
inside the folder. A write goes to a hidden temporary file in the target's folder, which the
loader and the watcher never read, is synced, then renamed over the target: a reader (the
watcher, an editor, a concurrent refresh) sees the old bytes or the new ones, never a part.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path

from cache.source import DEFAULT_MAX_BYTES, UnreadableFile, read_regular_file
from workflow import Workflow, WorkflowError, parse_workflow
from workflow.validate import status_has_error

NEW_FILE_MODE = 0o644
log = logging.getLogger(__name__)


class CannotWrite(OSError):
    """The file cannot be written or deleted as asked: the path holds something other than a
    regular file, a folder on its way is a file, or the filesystem refused; says which."""


class PreconditionFailed(ValueError):
    """The file on disk is not the one an `If-Match` names; says what it is instead."""


class InvalidContent(ValueError):
    """Bytes that must not be written: they would not load, or a phase has an error status.
    `workflow` holds the phases and their statuses when the bytes parsed at all."""

    def __init__(self, message: str, workflow: Workflow | None = None) -> None:
        super().__init__(message)
        self.workflow = workflow


def validated(key: str, data: bytes) -> Workflow:
    """The workflow `data` holds, if the loader would load it with no error-level status;
    else `InvalidContent` saying why. Only such bytes may be written, so a write never puts
    a file into error or leaves the taskmaster a phase it would refuse."""
    try:
        workflow = parse_workflow(data, key)
    except WorkflowError as err:
        raise InvalidContent(str(err)) from None
    except Exception as err:  # a parser bug refuses these bytes alone, as it fails one file
        log.exception("parsing new content of %s failed unexpectedly", key)
        raise InvalidContent(f"{key}: cannot load: internal error: {err!r}") from None
    failing = [p for p in workflow.phases if status_has_error(p.status)]
    if failing:
        found = "; ".join(f"phase {p.task}: {p.status}" for p in failing)
        raise InvalidContent(f"{key}: not written, errors in {found}", workflow)
    return workflow


def file_hash(data: bytes) -> str:
    """The hash the cache keys versions by (sha256, hex), as `If-Match` must give it."""
    return hashlib.sha256(data).hexdigest()


def read_current(folder: Path, key: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes | None:
    """The bytes now on disk under `key`, None when nothing is there.

    Only a regular file of at most `max_bytes` is read (no FIFO, device or huge file), as the
    loader reads; anything else raises `CannotWrite` saying why.
    """
    path = folder / key
    if not os.path.lexists(path):
        return None
    try:
        return read_regular_file(path, max_bytes)
    except UnreadableFile as err:
        raise CannotWrite(f"{key}: {err}") from None


def require_match(folder: Path, key: str, if_match: str) -> None:
    """Raise `PreconditionFailed` unless the file at `key` exists and, unless `if_match` is
    `*`, hashes to one of its (optionally quoted, comma-separated) entity tags.

    The caller holds its write lock from this check to the write it guards.
    """
    current = read_current(folder, key)
    if current is None:
        raise PreconditionFailed(f"{key}: If-Match: the file does not exist")
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}
    actual = file_hash(current)
    if "*" not in tags and actual not in tags:
        raise PreconditionFailed(f"{key}: If-Match: the file's hash is {actual}")


def write_atomic(folder: Path, key: str, data: bytes, *, if_match: str | None = None) -> bool:
    """Put `data` at `key` in one rename, creating missing folders inside `folder`; True when
    the file did not exist before. With `if_match`, only if `require_match` holds.

    The file keeps its mode when replaced. A key that is a symlink is refused rather than
    replaced by a regular file (which would silently cut the link) or written through (which
    would change another key's file).
    """
    if if_match is not None:
        require_match(folder, key, if_match)
    path = folder / key
    _make_folders(folder, path.parent, key)
    created = not os.path.lexists(path)
    mode = NEW_FILE_MODE if created else _replaceable_mode(path, key)
    try:
        # Hidden, so never loaded; short, so a name near the 255-byte limit still gets one.
        descriptor, temporary = tempfile.mkstemp(
            prefix=".flowlord-", suffix=".tmp", dir=path.parent
        )
    except OSError as err:
        raise CannotWrite(f"{key}: cannot write: {err.strerror or err}") from None
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CannotWrite(f"{key}: cannot write: {err.strerror or err}") from None
    _sync_folder(path.parent)
    return created


def delete(folder: Path, key: str, *, if_match: str | None = None) -> bool:
    """Remove the file (or the symlink) at `key`; False when nothing was there. With
    `if_match`, only if `require_match` holds."""
    path = folder / key
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as err:
        raise CannotWrite(f"{key}: cannot delete: {err.strerror or err}") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        raise CannotWrite(f"{key}: cannot delete: not a regular file")
    if if_match is not None:
        require_match(folder, key, if_match)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise CannotWrite(f"{key}: cannot delete: {err.strerror or err}") from None
    _sync_folder(path.parent)
    return True


def _make_folders(folder: Path, parent: Path, key: str) -> None:
    """Create the folders of `key` that are missing, and check that they stay inside `folder`
    (a folder swapped for a symlink since the key was checked must not take the write out)."""
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise CannotWrite(f"{key}: cannot create its folder: {err.strerror or err}") from None
    root = os.path.realpath(folder)
    if os.path.commonpath([root, os.path.realpath(parent)]) != root:
        raise CannotWrite(f"{key}: its folder resolves outside the workflow folder")


def _replaceable_mode(path: Path, key: str) -> int:
    """The permission bits of the regular file about to be replaced."""
    try:
        info = os.lstat(path)
    except OSError as err:
        raise CannotWrite(f"{key}: cannot write: {err.strerror or err}") from None
    if stat.S_ISLNK(info.st_mode):
        raise CannotWrite(f"{key}: is a symlink; write the file it points to instead")
    if not stat.S_ISREG(info.st_mode):
        raise CannotWrite(f"{key}: cannot write: not a regular file")
    return stat.S_IMODE(info.st_mode)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; a filesystem that cannot sync a folder keeps the write."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
