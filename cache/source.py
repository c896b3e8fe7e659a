"""The workflow folder (or single file): which files count, their keys, and reading them safely."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_BYTES = 1024 * 1024
EDITOR_TEMP_NAMES = frozenset({"4913"})


class UnreadableFile(OSError):
    """A workflow file that exists but cannot be read as one; the message says why."""


@dataclass(frozen=True, slots=True)
class Signature:
    """What a stat says about a file; unchanged size, mtime and inode let a scan skip hashing."""

    size: int
    mtime_ns: int
    inode: int


def is_workflow_name(name: str) -> bool:
    """Only `*.toml` counts; hidden files and editor temp files never do."""
    return (
        name.endswith(".toml")
        and not name.startswith((".", "#"))
        and not name.endswith("~")
        and name not in EDITOR_TEMP_NAMES
    )


@dataclass(slots=True)
class Listing:
    """What a scan found: workflow files by key, and the folders it could not list (by key
    prefix, `""` for the root, `"sub/"` below it) with why: files under those are unknown."""

    files: dict[str, Signature | UnreadableFile] = field(default_factory=dict)
    unlisted: dict[str, str] = field(default_factory=dict)

    def may_have(self, key: str) -> bool:
        """Whether `key` could be present in a folder that was not listed."""
        return any(key.startswith(prefix) for prefix in self.unlisted)


class WorkflowSource:
    """The files under a workflow path, keyed by their `/`-separated path relative to it."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"workflow path {str(self.path)!r} does not exist")
        self.is_dir = self.path.is_dir()
        self.max_bytes = max_bytes
        self._real_root = self.path.resolve()

    def owns(self, key: str) -> bool:
        """Whether `key` can name a workflow file here: relative, inside, not hidden, `*.toml`."""
        if not self.is_dir:
            return key == self.path.name
        parts = key.split("/")
        return (
            not key.startswith("/")
            and "\\" not in key
            and all(part and not part.startswith(".") for part in parts)
            and is_workflow_name(parts[-1])
        )

    def file_path(self, key: str) -> Path:
        """The file behind `key`; in single-file mode the key is the file's name."""
        return self.path / key if self.is_dir else self.path

    def scan(self) -> Listing:
        """Every workflow file now present, with its signature or why it cannot be read, and
        the folders that could not be listed.

        Raises FileNotFoundError when the workflow path itself is gone, so that callers never
        mistake a missing folder for a folder whose files were all deleted.
        """
        listing = Listing()
        try:
            os.stat(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(f"workflow path {str(self.path)!r} does not exist") from None
        except OSError as err:
            listing.unlisted[""] = f".: cannot list the folder: {err.strerror or err}"
            return listing
        if not self.is_dir:
            listing.files[self.path.name] = self.signature(self.path.name)
        else:
            self._scan_folder(os.fspath(self.path), "", listing)
        return listing

    def _scan_folder(self, folder: str, prefix: str, listing: Listing) -> None:
        """One `scandir` per folder: names and types come without a syscall per entry.

        Symlinked folders are not followed (no loops, nothing outside the folder).
        """
        try:
            with os.scandir(folder) as scan:
                entries = list(scan)
        except OSError as err:
            shown = prefix or "."
            listing.unlisted[prefix] = f"{shown}: cannot list the folder: {err.strerror or err}"
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                self._scan_folder(entry.path, f"{prefix}{name}/", listing)
            elif is_workflow_name(name):
                listing.files[prefix + name] = self._entry_signature(entry, prefix + name)

    def absent(self, key: str) -> bool | str:
        """Whether `key` is listed as absent: True, False (listed), or why no folder on its
        way could be listed (then nothing may be concluded, and nothing is removed).

        A file is absent when its folder lists without it, or when its folder is missing from
        (or not a folder in) the nearest enclosing folder that lists.
        """
        path = self.file_path(key)
        folder = path.parent
        while True:
            try:
                names = os.listdir(folder)
                break
            except (FileNotFoundError, NotADirectoryError) as err:
                if folder == self.path or folder == folder.parent:
                    return f"{self._shown(folder)}: cannot list the folder: {err.strerror}"
                folder = folder.parent
            except OSError as err:
                return f"{self._shown(folder)}: cannot list the folder: {err.strerror or err}"
        return folder != path.parent or path.name not in names

    def _shown(self, folder: Path) -> str:
        """A folder as its key prefix (`.` for the root), for messages."""
        try:
            return folder.relative_to(self.path).as_posix()
        except ValueError:
            return str(folder)

    def _entry_signature(self, entry: os.DirEntry[str], key: str) -> Signature | UnreadableFile:
        if entry.is_symlink():
            return self.signature(key)
        try:
            return self._checked(entry.stat(), key)
        except OSError as err:
            return UnreadableFile(f"{key}: cannot read: {err.strerror or err}")

    def signature(self, key: str) -> Signature | UnreadableFile:
        """Stat `key`, returning why it is no workflow file instead of raising."""
        path = self.file_path(key)
        try:
            info = path.stat()
            if (
                self.is_dir
                and path.is_symlink()
                and not path.resolve().is_relative_to(self._real_root)
            ):
                return UnreadableFile(f"{key}: symlink points outside the workflow folder")
        except OSError as err:
            return UnreadableFile(f"{key}: cannot read: {err.strerror or err}")
        return self._checked(info, key)

    def _checked(self, info: os.stat_result, key: str) -> Signature | UnreadableFile:
        if not stat.S_ISREG(info.st_mode):
            return UnreadableFile(f"{key}: not a regular file")
        if info.st_size > self.max_bytes:
            return UnreadableFile(
                f"{key}: file is {info.st_size} bytes, over the limit of {self.max_bytes}"
            )
        return Signature(size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino)

    def read(self, key: str) -> bytes:
        """The bytes of `key`; raises `UnreadableFile` naming the key and the reason."""
        try:
            return read_regular_file(self.file_path(key), self.max_bytes)
        except UnreadableFile as err:
            raise UnreadableFile(f"{key}: {err}") from None


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; `UnreadableFile` saying why not.

    Opened without blocking and checked on the open descriptor, so a FIFO, a device or a
    file swapped for one after a stat is refused rather than read (a FIFO would block).
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise UnreadableFile(f"cannot read: {err.strerror or err}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("not a regular file")
        if info.st_size > max_bytes:
            raise UnreadableFile(f"file is {info.st_size} bytes, over the limit of {max_bytes}")
        data = _read_capped(descriptor, info.st_size, max_bytes)
    except UnreadableFile:
        raise
    except OSError as err:
        raise UnreadableFile(f"cannot read: {err.strerror or err}") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise UnreadableFile(f"file is over the limit of {max_bytes} bytes")
    return data


def _read_capped(descriptor: int, size: int, max_bytes: int) -> bytes:
    """Read to EOF or just past the limit, sizing the first read by the file's size:
    a read sized by the limit would allocate a megabyte per file."""
    chunks = [os.read(descriptor, min(size, max_bytes) + 1)]
    total = len(chunks[0])
    while chunks[-1] and total <= max_bytes:
        chunks.append(os.read(descriptor, 65536))
        total += len(chunks[-1])
    return b"".join(chunks)
