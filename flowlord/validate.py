"""`flowlord validate`: check workflow files without loading them anywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from cache.source import UnreadableFile, WorkflowSource
from flowlord.table import format_table
from workflow import PhaseRecord, WorkflowError, parse_workflow
from workflow.validate import status_has_error

OK, FINDINGS, UNREADABLE = 0, 1, 2
HEADERS = ("file", "task", "depends_on", "rule", "status")


@dataclass(slots=True)
class FileReport:
    """What validation found in one file: its phases, or why it cannot be loaded."""

    file: str
    phases: list[PhaseRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    unreadable: bool = False


def validate_paths(paths: list[str]) -> list[FileReport]:
    """Reports for every workflow file named by `paths` (folders are searched recursively)."""
    reports = []
    for path in paths:
        try:
            source = WorkflowSource(path)
        except FileNotFoundError as err:
            reports.append(FileReport(file=path, error=str(err), unreadable=True))
            continue
        listing = source.scan()
        for key, signature in sorted(listing.files.items()):
            shown = (Path(path) / key).as_posix() if source.is_dir else path
            reports.append(_validate_file(source, key, shown, signature))
        for prefix, why in sorted(listing.unlisted.items()):
            shown = (Path(path) / prefix).as_posix()
            reports.append(FileReport(file=shown, error=_reword(why, prefix or ".", shown),
                                      unreadable=True))  # fmt: skip
    return reports


def _validate_file(source: WorkflowSource, key: str, shown: str, signature: object) -> FileReport:
    if isinstance(signature, UnreadableFile):
        return FileReport(file=shown, error=_reword(str(signature), key, shown), unreadable=True)
    try:
        # Parsed under its key, as the cache does: rules that depend on where the file sits
        # (a meta-file's path) are judged the same way here and in `run`.
        workflow = parse_workflow(source.read(key), key)
    except UnreadableFile as err:
        return FileReport(file=shown, error=_reword(str(err), key, shown), unreadable=True)
    except WorkflowError as err:
        return FileReport(file=shown, error=_reword(str(err), key, shown))
    phases = [replace(phase, file_path=shown) for phase in workflow.phases]
    return FileReport(file=shown, phases=phases, warnings=list(workflow.warnings))


def _reword(message: str, key: str, shown: str) -> str:
    return shown + message.removeprefix(key) if message.startswith(key) else message


def exit_code(reports: list[FileReport]) -> int:
    """2 if anything could not be read, else 1 if any file or phase has an error, else 0."""
    if any(r.unreadable for r in reports):
        return UNREADABLE
    failed = any(r.error or any(status_has_error(p.status) for p in r.phases) for r in reports)
    return FINDINGS if failed else OK


def render_text(reports: list[FileReport]) -> str:
    """A table of every phase, then one line per file error or file-level warning."""
    rows = [
        (r.file, p.task, p.depends_on, p.rule, p.status or "ok") for r in reports for p in r.phases
    ]
    lines = [format_table(HEADERS, rows)] if rows else []
    lines += [f"error: {r.error}" for r in reports if r.error]
    lines += [f"{r.file}: {w}" for r in reports for w in r.warnings]
    phases = sum(len(r.phases) for r in reports)
    errors = sum(bool(r.error) for r in reports) + sum(
        status_has_error(p.status) for r in reports for p in r.phases
    )
    lines.append(f"{len(reports)} file(s), {phases} phase(s), {errors} error(s)")
    return "\n".join(lines)


def render_json(reports: list[FileReport]) -> str:
    """The same reports for machines: one object per file."""
    return json.dumps(
        [
            {
                "file": r.file,
                "error": r.error,
                "warnings": r.warnings,
                "phases": [
                    {
                        "task": p.task,
                        "depends_on": p.depends_on,
                        "rule": p.rule,
                        "retry": p.retry,
                        "template": p.template,
                        "status": p.status,
                        "error": status_has_error(p.status),
                    }
                    for p in r.phases
                ],
            }
            for r in reports
        ],
        indent=2,
    )
