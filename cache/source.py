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
        for folder, dirs, files in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            relative = Path(folder).relative_to(self.path).as_posix()
            prefix = "" if relative == "." else f"{relative}/"
            for name in files:
                if is_workflow_name(name):
                    found[prefix + name] = self.signature(prefix + name)
        return found

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
            with open(self.file_path(key), "rb") as handle:
                data = handle.read(self.max_bytes + 1)
        except OSError as err:
            raise UnreadableFile(f"{key}: cannot read: {err.strerror or err}") from None
        if len(data) > self.max_bytes:
            raise UnreadableFile(f"{key}: file is over the limit of {self.max_bytes} bytes")
        return data
