"""What may name a workflow file from outside (an API path, a form): a key relative to the
workflow folder. Pure rules; whether it resolves inside the folder on disk (symlinks) is
checked where the disk is (`handlers.keys`)."""

from __future__ import annotations

MAX_KEY_LENGTH = 1024


def key_problem(key: str) -> str:
    """Why `key` cannot name a workflow file ("" when it can): empty, too long, absolute,
    with `..`, `.` or empty parts, a backslash or a control character, a hidden part, or
    not `*.toml`."""
    if not key:
        return "a workflow file key is required"
    if len(key) > MAX_KEY_LENGTH:
        return f"a workflow file key is at most {MAX_KEY_LENGTH} characters"
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        return "must be relative to the workflow folder, not absolute"
    if "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "must not contain a backslash or a control character"
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "must not contain '..', '.' or empty parts"
    if any(part.startswith(".") for part in parts):
        return "must not name a hidden file or folder"
    if not parts[-1].endswith(".toml") or parts[-1] == ".toml":
        return "must name a .toml file"
    if parts[-1].endswith("~") or parts[-1].startswith("#"):
        return "must not name an editor's temporary file"
    return ""
