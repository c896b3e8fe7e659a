"""Validation of what `run` needs (validate ⇔ run): topics, ranges, templates, batch, require."""

from __future__ import annotations

import pytest

from workflow import WorkflowError, parse_workflow
from workflow.validate import status_has_error

SIBLINGS = '[[Phase]]\ntask = "p:j"\nrule = "cron=@daily"\n'


def status_of(body: str, path: str = "v.toml") -> str:
    """The status of the last phase of a file that also holds a parent `p:j`."""
    workflow = parse_workflow(f"{SIBLINGS}[[Phase]]\n{body}\n".encode(), path)
    return workflow.phases[-1].status


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('task = "a.b-c_1"\nrule = "cron=@daily"', ""),
        ('task = "a b"\nrule = "cron=@daily"', "invalid topic: a b"),
        ('task = "a/b:j"\nrule = "cron=@daily"', "invalid topic: a/b"),
        ('task = "caf\u00e9"\nrule = "cron=@daily"', "invalid topic: caf\u00e9"),
        ('task = ".hidden"\ndependsOn = "p"', "invalid topic: .hidden"),
        (f'task = "{"t" * 201}"\ndependsOn = "p"', f"invalid topic: {'t' * 201}"),
    ],
)  # fmt: skip
def test_topic(body: str, status: str) -> None:
    assert status_of(body) == status


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('task = "t"\nrule = "cron=@daily&offset=-2562047h"', ""),
        ('task = "t"\nrule = "cron=@daily&offset=2600000h"',
         "invalid duration: offset=2600000h (out of range)"),
        ('task = "t"\ndependsOn = "p"\nrule = "retry_delay=99999999h"',
         "invalid duration: retry_delay=99999999h (out of range)"),
        ('task = "t"\ndependsOn = "p"\nrule = "for=-9999999h"',
         "invalid duration: for=-9999999h (out of range)"),
        ('task = "t"\nrule = "cron=@every 3000000h"',
         "invalid duration: cron=@every 3000000h (out of range)"),
        ('task = "t"\nrule = "cron=@every 2000000h"', ""),
        ('task = "t"\ndependsOn = "p"\nrule = "offset=' + "9" * 5000 + 's"',
         "invalid duration: offset=" + "9" * 5000 + "s"),
    ],
)  # fmt: skip
def test_durations_that_leave_the_calendar(body: str, status: str) -> None:
    assert status_of(body) == status


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('task = "t"\nrule = "cron=@daily"\ntemplate = "{yyyy}{mm}{dd}{hh}{ts}"', ""),
        ('task = "t"\nrule = "cron=@daily"\ntemplate = "?d={yyy}"',
         "invalid template: unknown template key {yyy}"),
        ('task = "t"\nrule = "cron=@daily"\ntemplate = "{meta}"',
         "invalid template: unknown template key {meta}"),
        ('task = "t"\nrule = "cron=@daily"\ntemplate = "{dd:x}"',
         "invalid template: unknown template key {dd:x}"),
        ('task = "t"\nrule = "cron=@daily"\ntemplate = "{meta:workflow}/{meta:cron}"', ""),
        ('task = "t"\nrule = "cron=@daily"\ntemplate = "{meta:region}"',
         "invalid template: {meta:region} is never set: this phase's tasks carry meta "
         "cron, workflow"),
        ('task = "t"\nrule = "cron=@daily"\ntemplate = "{meta:job}"',
         "invalid template: {meta:job} is never set: this phase's tasks carry meta "
         "cron, workflow"),
        ('task = "t:x"\nrule = "cron=@daily"\ntemplate = "{meta:job}"', ""),
        ('task = "t"\nrule = "cron=@daily&meta=region:us,eu"\ntemplate = "{meta:region}"', ""),
        ('task = "t"\nrule = "cron=@daily&meta-file=r.csv"\ntemplate = "{meta:region}"', ""),
        ('task = "t"\nrule = "files=/in/*.csv"\ntemplate = "{meta:file}?n={meta:filename}"', ""),
        ('task = "t"\nrule = "files=/in/*.csv"\ntemplate = "{meta:cron}"',
         "invalid template: {meta:cron} is never set: this phase's tasks carry meta "
         "file, filename, workflow"),
        ('task = "t"\nrule = "cron=@daily&files=/in/*"\ntemplate = "{meta:file}"',
         "invalid template: {meta:file} is never set: this phase's tasks carry meta workflow"),
        ('task = "t"\ndependsOn = "p"\ntemplate = "{meta:anything}"', ""),
        ('task = "t"\ndependsOn = "p"\ntemplate = "{yyy}"',
         "invalid template: unknown template key {yyy}"),
    ],
)  # fmt: skip
def test_templates(body: str, status: str) -> None:
    assert status_of(body) == status


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('task = "t"\ndependsOn = "p"\nrule = "for=-72h&by=day&meta=region:us,eu"', ""),
        ('task = "t"\ndependsOn = "p"\nrule = "for=-72h&by=week"',
         "invalid rule: by=week (must be one of day, hour, month)"),
        ('task = "t"\ndependsOn = "p"\nrule = "by=day"',
         "invalid rule: by=day (needs a range: add for=<duration>)"),
        ('task = "t"\ndependsOn = "p"\nrule = "meta=region"',
         "invalid rule: meta=region ('region' is not key:value,value...)"),
        ('task = "t"\ndependsOn = "p"\nrule = "meta=a:1|b:1,2"',
         "invalid rule: meta=a:1|b:1,2 (lists differ in length (a: 1, b: 2))"),
        ('task = "t"\ndependsOn = "p"\nrule = "for=-20000h&by=hour"',
         "invalid rule: for=-20000h (for=-20000h by=hour makes 20001 tasks, "
         "over the limit of 10000)"),
        ('task = "t"\ndependsOn = "p"\nrule = "meta=a:1&meta-file=x.csv"',
         "invalid rule: meta=a:1 (meta=a:1 and meta-file=x.csv: use only one)"),
        ('task = "t"\ndependsOn = "p"\nrule = "meta-file=x.txt"',
         "invalid rule: meta-file=x.txt (unsupported meta-file type: use .csv, .json or .jsonl)"),
        ('task = "t"\ndependsOn = "p"\nrule = "meta-file=../x.csv"',
         "invalid rule: meta-file=../x.csv (outside the workflow folder)"),
        ('task = "t"\ndependsOn = "p"\nrule = "meta-file=/etc/x.csv"',
         "invalid rule: meta-file=/etc/x.csv (outside the workflow folder)"),
        ('task = "t"\ndependsOn = "p"\nrule = "meta-file=lists/./x.json"', ""),
        ('task = "t"\ndependsOn = "p"\nrule = "meta-file=x%00y.csv"',
         "invalid rule: meta-file=x\x00y.csv (contains a NUL character)"),
    ],
)  # fmt: skip
def test_batch_rules(body: str, status: str) -> None:
    assert status_of(body) == status


def test_meta_file_may_climb_to_the_folder_root_from_a_subfolder() -> None:
    assert status_of('task = "t"\ndependsOn = "p"\nrule = "meta-file=../x.csv"', "sub/v.toml") == ""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('task = "t"\ndependsOn = "p"\nrule = "require={meta:file}"', ""),
        ('task = "t"\ndependsOn = "p"\nrule = "require={meta:file},p:j"', ""),
        ('task = "t"\ndependsOn = "p"\nrule = "require=p"', ""),
        ('task = "t"\ndependsOn = "p"\nrule = "require=q"',
         "invalid rule: require=q (no phase q in this file)"),
        ('task = "t"\ndependsOn = "p"\nrule = "require=p:k"',
         "invalid rule: require=p:k (no phase p:k in this file)"),
        ('task = "t"\ndependsOn = "p"\nrule = "require={file}"',
         "invalid rule: require={file} ('{file}' is neither {meta:KEY} nor topic[:job])"),
    ],
)  # fmt: skip
def test_require(body: str, status: str) -> None:
    assert status_of(body) == status


def test_every_new_finding_is_an_error() -> None:
    for status in (
        "invalid topic: a b",
        "invalid duration: offset=1h (out of range)",
        "invalid template: unknown template key {yyy}",
        "invalid rule: by=week (must be one of day, hour, month)",
    ):
        assert status_has_error(status)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[Phase]]\ntask = "t"\nrule = "cron=@daily"\nretry = 99999999999999999999\n',
         "retry must be at most 9223372036854775807"),
        ("[[Phase]]\ntask = " + "[" * 600 + "]" * 600 + "\n", "TOML nested too deeply"),
        ("x = " + "{a=" * 600 + "1" + "}" * 600 + "\n", "TOML nested too deeply"),
    ],
)  # fmt: skip
def test_poison_files_fail_as_workflow_errors(text: str, problem: str) -> None:
    with pytest.raises(WorkflowError, match=problem):
        parse_workflow(text.encode(), "poison.toml")
