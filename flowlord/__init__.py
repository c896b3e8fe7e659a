"""flowlord: the taskmaster, its configuration and the `flowlord` command."""

from __future__ import annotations


def version() -> str:
    """The installed distribution's version; from a source tree that was never installed, the
    version in its `pyproject.toml` (marked `+source`), else `unknown`."""
    from importlib import metadata  # here: importing any flowlord module should not pay for it
    from pathlib import Path

    import tomli

    try:
        return metadata.version("flowlord")
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomli.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
        return f"{project['project']['version']}+source"
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"
