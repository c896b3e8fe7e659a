"""The workflow domain: phases, rules, parsing, validation, templates and cron. No I/O here."""

from workflow.errors import WorkflowError
from workflow.parse import Workflow, parse_workflow
from workflow.phase import Phase, PhaseRecord
from workflow.task import Result, Task

__all__ = ["Phase", "PhaseRecord", "Result", "Task", "Workflow", "WorkflowError", "parse_workflow"]
