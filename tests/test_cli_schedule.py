"""`flowlord schedule` and `flowlord phases --status`: what will fire, and what will not."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flowlord.cli import main
from tests.conftest import TESTDATA, write

WORKFLOW = """
[[Phase]]
task = "nightly"
rule = "cron=0 2 * * *"

[[Phase]]
task = "child"
dependsOn = "nightly"

[[Phase]]
task = "landing"
rule = "files=/in/*.csv"

[[Phase]]
task = "bad topic"
rule = "cron=@hourly"
"""


pytestmark = pytest.mark.usefixtures("cli_home")


def test_schedule_lists_next_fires_in_the_time_zone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(tmp_path / "wf", "w.toml", WORKFLOW)
    code = main(["schedule", "--workflows", "wf", "--timezone", "Europe/Paris", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # one phase will not run
    assert report["timezone"] == "Europe/Paris"
    rows = {row["task"]: row for row in report["phases"]}
    assert set(rows) == {"nightly", "landing", "bad topic"}  # not the child
    nightly = datetime.fromisoformat(rows["nightly"]["next"])
    assert (nightly.hour, nightly.minute) == (2, 0)
    assert nightly > datetime.now(ZoneInfo("Europe/Paris"))
    assert datetime.fromisoformat(rows["nightly"]["previous"]) < nightly
    assert rows["landing"] == {
        "file": "w.toml", "task": "landing", "trigger": "files=/in/*.csv", "problem": "",
        "previous": None, "next": None,
    }  # fmt: skip
    assert rows["bad topic"]["problem"] == "will not run: invalid topic: bad topic"
    assert rows["bad topic"]["next"] is None


def test_schedule_of_the_example_workflows_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["schedule", "--workflows", str(TESTDATA / "workflows")])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split()[:5] == ["file", "task", "trigger", "previous", "next"]
    assert any(line.startswith("etl.toml") and "cron=0 2 * * *" in line for line in out)


@pytest.mark.parametrize(
    ("status", "tasks"),
    [
        ("error", ["orphan", "idle", "badcron", "notquery", "lost", "slow"]),
        ("warning", ["both", "stubborn", "typo"]),
        ("retry", ["stubborn", "typo", "slow"]),
    ],
)
def test_phases_status_filters(
    capsys: pytest.CaptureFixture[str], status: str, tasks: list[str]
) -> None:
    main(["phases", "--workflows", str(TESTDATA / "findings"), "--status", status, "--json"])
    assert [row["task"] for row in json.loads(capsys.readouterr().out)["phases"]] == tasks


def test_phases_status_ok(capsys: pytest.CaptureFixture[str]) -> None:
    main(["phases", "--workflows", str(TESTDATA / "workflows"), "--status", "ok", "--json"])
    rows = json.loads(capsys.readouterr().out)["phases"]
    assert rows and all(row["status"] == "" for row in rows)


def test_phases_says_last_good_phases_kept_only_where_there_are_some(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(tmp_path / "wf", "was_good.toml", WORKFLOW)
    main(["phases", "--workflows", "wf"])
    write(tmp_path / "wf", "was_good.toml", "[[Phase]\n")
    write(tmp_path / "wf", "never.toml", "[[Phase]\n")
    capsys.readouterr()
    assert main(["phases", "--workflows", "wf"]) == 1
    errors = sorted(capsys.readouterr().err.splitlines())
    assert errors[0].startswith("error: never.toml: line 1: TOML syntax")
    assert errors[0].endswith("(not loaded)")
    assert errors[1].startswith("error: was_good.toml: line 1: TOML syntax")
    assert errors[1].endswith("(last good phases kept)")
