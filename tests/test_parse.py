"""parse_workflow: keys, job resolution, and every way a file can fail to load."""

from __future__ import annotations

import pytest

from tests.conftest import TESTDATA
from workflow import Phase, PhaseRecord, WorkflowError, parse_workflow


def parse(text: str, path: str = "w.toml"):
    return parse_workflow(text.encode(), path)


def test_phases_in_file_order_with_all_fields() -> None:
    workflow = parse(
        '[[Phase]]\ntask = "a"\nrule = "cron=0 * * * *"\nretry = 2\ntemplate = "?d={yyyy}"\n'
        '[[Phase]]\ntask = "b:j"\ndependsOn = "a"\n'
    )
    assert workflow.phases == (
        PhaseRecord(task="a", rule="cron=0 * * * *", retry=2, template="?d={yyyy}",
                    file_path="w.toml"),
        PhaseRecord(task="b:j", depends_on="a", file_path="w.toml"),
    )  # fmt: skip


@pytest.mark.parametrize("key", ["dependsOn", "DependsOn", "depends_on", "DEPENDSON", "dependson"])
def test_depends_on_spellings(key: str) -> None:
    workflow = parse(
        f'[[Phase]]\ntask = "a"\nrule = "cron=@daily"\n[[Phase]]\ntask = "b"\n{key} = "a"\n'
    )
    assert workflow.phases[1].depends_on == "a"
    assert workflow.phases[1].status == ""


def test_lowercase_array_and_keys() -> None:
    workflow = parse('[[phase]]\nTASK = "a"\nRule = "cron=@daily"\nRETRY = 1\n')
    assert (workflow.phases[0].task, workflow.phases[0].retry) == ("a", 1)


def test_rule_job_is_stored_in_task() -> None:
    phase = parse('[[Phase]]\ntask = "t"\nrule = "cron=@daily&job=x"\n').phases[0]
    assert (phase.task, phase.topic, phase.job, phase.status) == ("t:x", "t", "x", "")


def test_task_job_wins_over_rule_job_with_a_warning() -> None:
    phase = parse('[[Phase]]\ntask = "t:a"\nrule = "cron=@daily&job=b"\n').phases[0]
    assert phase.task == "t:a"
    assert phase.status == "warning: rule job=b ignored: task names job a"


def test_phase_job_property_reads_rule_when_task_has_none() -> None:
    assert Phase(task="t", rule="job=x").job == "x"
    assert Phase(task="t:y", rule="job=x").job == "y"
    assert Phase(task="t").job == ""


def test_is_empty_ignores_record_fields() -> None:
    assert PhaseRecord(file_path="f.toml", status="not found").is_empty()
    assert not PhaseRecord(task="t").is_empty()


def test_unknown_keys_are_findings_not_failures() -> None:
    workflow = parse('owner = "me"\n[[Phase]]\ntask = "t"\nrule = "cron=@daily"\ntimeout = 3\n')
    assert workflow.phases[0].status == "warning: unknown key: timeout"
    assert workflow.warnings == ("warning: unknown key: owner",)


def test_utf8_bom_is_accepted() -> None:
    workflow = parse_workflow(
        b'\xef\xbb\xbf[[Phase]]\ntask = "t"\nrule = "cron=@daily"\n', "b.toml"
    )
    assert workflow.phases[0].task == "t"


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        (b"", None, "empty file"),
        (b"  \n\t\n", None, "empty file"),
        (b'[[Phase]]\ntask = "a"\nrule = \n', 3, "TOML syntax: Invalid value"),
        (b"this is not toml at all", 1, "TOML syntax"),
        (b'[[Phase]]\ntask = "a"\nrule = "cron=@daily"\nretry = "three"\n', 4,
         "phase 1: retry must be an integer, got string 'three'"),
        (b'[[Phase]]\ntask = "a"\nrule = "x=1"\nretry = true\n', 4,
         "phase 1: retry must be an integer, got boolean True"),
        (b'[[Phase]]\ntask = "a"\nrule = "x=1"\nretry = -1\n', 4, "retry must not be negative"),
        (b'[[Phase]]\ntask = "a"\nrule = 5\n', 3, "phase 1: rule must be a string, got integer 5"),
        (b'[[Phase]]\ntask = "a"\nrule = "x=1"\n[[Phase]]\nrule = "cron=@daily"\n', 4,
         "phase 2: missing task"),
        (b'[[Phase]]\ntask = "  "\nrule = "x=1"\n', 1, "phase 1: missing task"),
        (b'[[Phase]]\ntask = ":j"\nrule = "x=1"\n', 2, "phase 1: task ':j' has no topic"),
        (b'[[Phase]]\ntask = "a"\nrule = "cron=@daily"\n[[Phase]]\ntask = "b"\ndependsOn = "a"\n'
         b'[[Phase]]\ntask = "a"\nrule = "cron=@hourly"\n', 7,
         "phase 3: duplicate task a (first in phase 1)"),
        (b'[[Phase]]\ntask = "a"\nrule = "job=x"\n[[Phase]]\ntask = "a:x"\ndependsOn = "b"\n', 4,
         "phase 2: duplicate task a:x"),
        (b'[[Phase]]\ntask = "a"\ndependsOn = "b"\ndepends_on = "c"\n', 4,
         "phase 1: depends_on repeats dependsOn"),
        (b'[[Phase]]\ntask = "a"\nrule = "x=1"\n[[phase]]\ntask = "b"\nrule = "x=1"\n', None,
         "mixes [[Phase]] and [[phase]]: use one spelling"),
        (b'title = "no phases"\n', None, "no [[Phase]] tables"),
        (b'Phase = "a"\n', None, "Phase must be an array of tables"),
        (b'[[Phase]]\ntask = "caf\xe9"\n', 2, "not UTF-8 text (byte 0xe9)"),
        (b"\x00\x01\x02binary\xff\xfe", 1, "not UTF-8 text"),
    ],
)  # fmt: skip
def test_bad_files_name_file_line_and_problem(data: bytes, line: int | None, problem: str) -> None:
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(data, "dir/bad.toml")
    err = raised.value
    assert isinstance(err, ValueError)
    assert err.path == "dir/bad.toml"
    assert err.line == line
    assert problem in err.problem
    assert str(err).startswith("dir/bad.toml: " + (f"line {line}: " if line else ""))


def test_inline_phase_array_errors_have_no_line() -> None:
    with pytest.raises(WorkflowError) as raised:
        parse('Phase = [{task = "a", retry = "x"}]\n')
    assert raised.value.line is None
    assert raised.value.problem == "phase 1: retry must be an integer, got string 'x'"


@pytest.mark.parametrize("name", sorted(p.name for p in (TESTDATA / "invalid").glob("*.toml")))
def test_invalid_fixtures_fail(name: str) -> None:
    with pytest.raises(WorkflowError, match=name):
        parse_workflow((TESTDATA / "invalid" / name).read_bytes(), name)


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(TESTDATA)) for p in TESTDATA.glob("workflows/**/*.toml"))
)
def test_workflow_fixtures_load_clean(path: str) -> None:
    workflow = parse_workflow((TESTDATA / path).read_bytes(), path)
    assert workflow.phases
    assert [p.status for p in workflow.phases] == [""] * len(workflow.phases)
