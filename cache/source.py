"""The workflow folder (or single file): which files count, their keys, and reading them safely."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
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

    def scan(self) -> dict[str, Signature | UnreadableFile]:
        """Every workflow file now present, with its signature or why it cannot be read.

        Raises FileNotFoundError when the workflow path itself is gone, so that callers never
        mistake a missing folder for a folder whose files were all deleted.
        """
        if not self.path.exists():
            raise FileNotFoundError(f"workflow path {str(self.path)!r} does not exist")
        if not self.is_dir:
            return {self.path.name: self.signature(self.path.name)}
        found: dict[str, Signature | UnreadableFile] = {}
        self._scan_folder(os.fspath(self.path), "", found)
        return found

    def _scan_folder(
        self, folder: str, prefix: str, found: dict[str, Signature | UnreadableFile]
    ) -> None:
        """One `scandir` per folder: names and types come without a syscall per entry.

        Symlinked folders are not followed (no loops, nothing outside the folder).
        """
        try:
            entries = list(os.scandir(folder))
        except OSError as err:
            found[prefix or "."] = UnreadableFile(f"{prefix or '.'}: cannot list: {err.strerror}")
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                self._scan_folder(entry.path, f"{prefix}{name}/", found)
            elif is_workflow_name(name):
                found[prefix + name] = self._entry_signature(entry, prefix + name)

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
            descriptor = os.open(self.file_path(key), os.O_RDONLY | os.O_NONBLOCK)
            try:
                data = self._read_capped(descriptor)
            finally:
                os.close(descriptor)
        except OSError as err:
            raise UnreadableFile(f"{key}: cannot read: {err.strerror or err}") from None
        if len(data) > self.max_bytes:
            raise UnreadableFile(f"{key}: file is over the limit of {self.max_bytes} bytes")
        return data

    def _read_capped(self, descriptor: int) -> bytes:
        """Read to EOF or just past the limit, sizing the first read by the file's size:
        a read sized by the limit would allocate a megabyte per file."""
        size = os.fstat(descriptor).st_size
        chunks = [os.read(descriptor, min(size, self.max_bytes) + 1)]
        total = len(chunks[0])
        while chunks[-1] and total <= self.max_bytes:
            chunks.append(os.read(descriptor, 65536))
            total += len(chunks[-1])
        return b"".join(chunks)
