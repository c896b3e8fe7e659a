"""Errors of the workflow domain."""

from __future__ import annotations


class WorkflowError(ValueError):
    """A workflow file that cannot be loaded: names the file, the line if known, and the problem."""

    def __init__(self, path: str, problem: str, *, line: int | None = None) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        where = f"{path}: line {line}" if line else path
        super().__init__(f"{where}: {problem}")
