"""Errors of the cache."""

from __future__ import annotations

SHOWN = 20


class RefreshError(Exception):
    """Some files failed to load in a refresh; the good ones were loaded all the same.

    `errors` maps each failing key to why; `changed` lists what the refresh did apply.
    """

    def __init__(self, errors: dict[str, str], changed: list[str]) -> None:
        self.errors = errors
        self.changed = changed
        shown = [f"  {message}" for message in list(errors.values())[:SHOWN]]
        if len(errors) > SHOWN:
            shown.append(f"  ... and {len(errors) - SHOWN} more")
        super().__init__(f"{len(errors)} workflow file(s) failed to load:\n" + "\n".join(shown))
