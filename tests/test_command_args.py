"""`workflow.command`: a task's info and meta filled into a command's arguments, and the
templates refused at start."""

from __future__ import annotations

import pytest

from workflow import Task
from workflow.command import CommandError, CommandTemplate, MissingMeta

TASK = Task(
    type="load",
    info="s3://bucket/2026/11/21/data file.csv?x=1",
    meta="day=2026-11-21&job=a%20b&empty=&twice=first&twice=second&caf%C3%A9=cr%C3%A8me",
    id="id-1",
)

FILLED = [  # (template, argv for TASK)
    (["echo", "{info}"], ["echo", "s3://bucket/2026/11/21/data file.csv?x=1"]),
    (["cp", "--day={meta:day}", "{info}"],
     ["cp", "--day=2026-11-21", "s3://bucket/2026/11/21/data file.csv?x=1"]),
    (["run", "{meta:job}"], ["run", "a b"]),  # decoded, and one argument: never split
    (["run", "{meta:empty}"], ["run", ""]),  # present, though empty
    (["run", "{meta:twice}"], ["run", "first"]),  # the first value, as everywhere in flowlord
    (["run", "{meta:café}"], ["run", "crème"]),
    (["run", "{meta:day}/{meta:day}:{info}"],
     ["run", "2026-11-21/2026-11-21:s3://bucket/2026/11/21/data file.csv?x=1"]),
    (["awk", "{print $1}", "{}", "{{info}}", "{INFO}", "{info", "{meta"],
     ["awk", "{print $1}", "{}", "{s3://bucket/2026/11/21/data file.csv?x=1}", "{INFO}",
      "{info", "{meta"]),
    (["sh", "-c", "echo {info} | wc -c"],
     ["sh", "-c", "echo s3://bucket/2026/11/21/data file.csv?x=1 | wc -c"]),  # the shell splits
    (["{meta:day}"], ["2026-11-21"]),
]  # fmt: skip


@pytest.mark.parametrize(("template", "argv"), FILLED)
def test_render(template: list[str], argv: list[str]) -> None:
    assert CommandTemplate.parse(template).render(TASK) == argv


def test_a_value_with_quotes_and_dollars_is_passed_as_it_is() -> None:
    task = Task(type="t", info="'; rm -rf / #$(id)`id`\"")
    assert CommandTemplate.parse(["echo", "{info}"]).render(task) == ["echo", task.info]


@pytest.mark.parametrize("key", ["missing", "DAY", "da", "caf%C3%A9"])
def test_missing_meta_key(key: str) -> None:
    template = CommandTemplate.parse(["echo", f"{{meta:{key}}}"])
    with pytest.raises(MissingMeta) as caught:
        template.render(TASK)
    assert str(caught.value) == f"meta key {key!r} is not in the task's meta"


def test_no_meta_at_all() -> None:
    with pytest.raises(MissingMeta, match="meta key 'day' is not in the task's meta"):
        CommandTemplate.parse(["echo", "{meta:day}"]).render(Task(type="t"))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "no command"),
        ("echo {info}", "no command"),  # a string, not a list
        ([""], "the program name is empty"),
        (["echo", "{meta:}"], "argument '{meta:}'"),
        (["echo", "x{meta:day"], "argument 'x{meta:day'"),
        (["echo", "{meta:a b}"], "argument '{meta:a b}'"),
        (["echo", "{meta:a{b}}"], "argument '{meta:a{b}}'"),
        (["echo", "{meta:day}", "{meta:}x"], "argument '{meta:}x'"),
        (["echo", "{meta:day}{meta:"], "argument '{meta:day}{meta:'"),
    ],
)
def test_bad_templates(argv: list[str], expected: str) -> None:
    with pytest.raises(CommandError) as caught:
        CommandTemplate.parse(argv)
    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize(
    ("argv", "fixed"),
    [(["echo"], True), (["{info}", "x"], False), (["/opt/{meta:tool}/run"], False),
     (["awk", "{meta:x}"], True)],
)  # fmt: skip
def test_fixed_program(argv: list[str], fixed: bool) -> None:
    assert CommandTemplate.parse(argv).fixed_program is fixed
