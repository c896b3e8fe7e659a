"""Meta-files: the rows of a rule's `meta-file`, read for batch rules at fire time.

File access stays inside the workflow folder, and only regular files of bounded size are read:
a path that resolves outside the folder, a FIFO, a device or a symlink loop is refused as an
error of that phase.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from cache.source import UnreadableFile, read_regular_file
from workflow.batch import BatchError, parse_meta_file

MAX_META_FILE_BYTES = 10 * 1024 * 1024


class MetaFiles:
    """Reads `meta-file`s named by rules, relative to the workflow file, inside the folder."""

    def __init__(self, folder: os.PathLike[str] | str) -> None:
        self._folder = os.path.realpath(folder)

    def rows(self, workflow_key: str, name: str) -> list[dict[str, str]]:
        """The rows of a meta file; BatchError when it is outside the folder or unreadable.

        `realpath` never raises on a symlink loop (the open does, as ELOOP), and the path is
        checked after every link is resolved.
        """
        joined = Path(self._folder, PurePosixPath(workflow_key).parent, name)
        path = os.path.realpath(joined)
        if os.path.commonpath((self._folder, path)) != self._folder:
            raise BatchError("meta-file", f"meta-file={name}: outside the workflow folder")
        try:
            data = read_regular_file(path, MAX_META_FILE_BYTES)
        except UnreadableFile as err:
            raise BatchError("meta-file", f"meta-file={name}: {err}") from None
        return parse_meta_file(data, name)
