"""The workflow files and phase names a database knows, read without a workflow folder.

Commands that name a workflow (`flowlord pause`) check the name against what `flowlord run`
loaded into the database, without loading anything themselves.
"""

from __future__ import annotations

import os

from cache.schema import connect


class Catalog:
    """A read-only view of the cache tables of one database file."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self._connection = connect(db_path)

    def phases_of(self, workflow: str) -> list[str] | None:
        """The phase names of a workflow file in file order; None for a file it does not know
        (a file that fails to load is known, with the phases it last loaded)."""
        db = self._connection
        known = db.execute("SELECT 1 FROM workflow_files WHERE file_path = ?", (workflow,))
        if not known.fetchall():
            return None
        found = db.execute(
            "SELECT task FROM workflow_phases WHERE file_path = ? ORDER BY position", (workflow,)
        )
        return [task for (task,) in found]

    def workflows(self) -> list[str]:
        """Every workflow file key, sorted."""
        found = self._connection.execute("SELECT file_path FROM workflow_files ORDER BY file_path")
        return [key for (key,) in found]

    def close(self) -> None:
        self._connection.close()
