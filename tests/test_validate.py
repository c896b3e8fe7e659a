"""Validation statuses, worded exactly as DESIGN.md's table."""

from __future__ import annotations

import pytest

from tests.conftest import TESTDATA
from workflow import parse_workflow
from workflow.validate import status_has_error

SIBLINGS = '[[Phase]]\ntask = "p:j"\nrule = "cron=@daily"\n'


def status_of(body: str) -> str:
    """The status of the last phase of a file that also holds a parent `p:j`."""
    workflow = parse_workflow(f"{SIBLINGS}[[Phase]]\n{body}\n".encode(), "v.toml")
    return workflow.phases[-1].status


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('task = "t"\nrule = "cron=0 0 * * *"', ""),
        ('task = "t"\nrule = "cron=0 30 2 * * *"', ""),
        ('task = "t"\nrule = "cron=@every 5m"', ""),
        ('task = "t"\nrule = "files=s3://b/*.gz"', ""),
        ('task = "t"\ndependsOn = "p"', ""),
        ('task = "t"\ndependsOn = "p:j"', ""),
        ('task = "t"\ntemplate = "x"', "invalid phase: rule and dependsOn are blank"),
        ('task = "t"\nrule = "offset=-1h"', "non-scheduled phase: use dependsOn, cron or files"),
        ('task = "t"\nrule = "cron=61 * * * *"', "no valid rule found: cron=61 * * * * ("),
        ('task = "t"\nrule = "cron="', "no valid rule found: cron= ("),
        ('task = "t"\ndependsOn = "p"\nrule = "0 0 * * * *"', "invalid rule format: 0 0 * * * *"),
        ('task = "t"\ndependsOn = "q"', "parent task not found: q"),
        ('task = "t"\ndependsOn = "p:other"', "parent task not found: p:other"),
        ('task = "t"\ndependsOn = "p"\nrule = "cron=0 * * * *"', "ignored rule: cron=0 * * * *"),
        ('task = "t"\ndependsOn = "p"\nretry = 11',
         "warning: retry count exceeds recommended limit"),
        ('task = "t"\ndependsOn = "p"\nretry = 10', ""),
        ('task = "t"\ndependsOn = "p"\nrule = "retry_dely=5m"',
         "warning: unknown rule key: retry_dely"),
        ('task = "t"\ndependsOn = "p"\ntimeout = "5m"', "warning: unknown key: timeout"),
        ('task = "t"\ndependsOn = "p"\nrule = "offset=1 hour"', "invalid duration: offset=1 hour"),
        ('task = "t"\ndependsOn = "p"\nrule = "retry_delay=5x"',
         "invalid duration: retry_delay=5x"),
        ('task = "t"\ndependsOn = "p"\nrule = "for=-72h&by=day"', ""),
        ('task = "t"\ndependsOn = "p"\nrule = "for=soon"', "invalid duration: for=soon"),
    ],
)  # fmt: skip
def test_status_texts(body: str, status: str) -> None:
    found = status_of(body)
    if status.endswith("("):
        assert found.startswith(status) and found.endswith(")")
    else:
        assert found == status


def test_findings_join_in_table_order() -> None:
    found = status_of(
        'task = "t"\ndependsOn = "nope"\nretry = 20\nrule = "cron=bad&colour=red&offset=x"\nfoo = 1'
    )
    parts = found.split("; ")
    assert [p.split(":")[0] for p in parts] == [
        "no valid rule found", "parent task not found", "ignored rule", "warning", "warning",
        "warning", "invalid duration",
    ]  # fmt: skip
    assert parts[3:6] == [
        "warning: retry count exceeds recommended limit",
        "warning: unknown rule key: colour",
        "warning: unknown key: foo",
    ]


def test_not_a_query_is_also_non_scheduled() -> None:
    assert status_of('task = "t"\nrule = "0 0 * * * *"') == (
        "non-scheduled phase: use dependsOn, cron or files; invalid rule format: 0 0 * * * *"
    )


def test_blank_phase_stands_alone() -> None:
    assert (
        status_of('task = "t"\nretry = 99\nfoo = 1')
        == "invalid phase: rule and dependsOn are blank"
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("", False),
        ("warning: unknown key: x", False),
        ("ignored rule: cron=@daily", False),
        ("ignored rule: cron=@daily; warning: retry count exceeds recommended limit", False),
        ("parent task not found: x", True),
        ("warning: unknown key: x; invalid duration: for=x", True),
    ],
)
def test_status_has_error(status: str, error: bool) -> None:
    assert status_has_error(status) is error


def test_findings_fixture_flags_every_phase() -> None:
    workflow = parse_workflow((TESTDATA / "findings" / "statuses.toml").read_bytes(), "s.toml")
    assert all(p.status for p in workflow.phases)
    assert [p.task for p in workflow.phases if status_has_error(p.status)] == [
        "orphan", "idle", "badcron", "notquery", "lost", "slow",
    ]  # fmt: skip
