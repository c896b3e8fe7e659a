"""Nothing stops `flowlord run`: every input channel fed bad data, with real processes.

Done and file messages that are poison, a cron phase whose meta-file is a FIFO, a files rule
whose meta-file is a symlink loop, a poison workflow file saved while it runs: the process logs
each, goes on, still moves the good tasks, stops on SIGTERM, and a restart meets none of the
bad messages again (they were acknowledged).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import write
from tests.processes import flowlord_run, stop, wait_until
from tests.processes import tasks_on as bus_tasks

GOOD = """
[[Phase]]
task = "parent"
rule = "cron=0 0 1 1 *"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "child"
dependsOn = "parent"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "slow"
rule = "cron=0 0 1 1 *&retry_delay=99999999h"
retry = 3

[[Phase]]
task = "ingest"
rule = "files=/in/*.csv"
template = "{meta:file}"

[[Phase]]
task = "fifo"
rule = "files=/fifo/*.csv&meta-file=pipe.csv"
template = "{meta:file}?r={meta:region}"

[[Phase]]
task = "loop"
rule = "files=/loop/*.csv&meta-file=loop.csv"
template = "{meta:file}"

[[Phase]]
task = "tick"
rule = "cron=* * * * * *&meta-file=pipe.csv"
template = "?r={meta:region}"
"""
DEEP = "[" * 100_000 + "]" * 100_000
BAD_DONE = [
    {"type": "parent", "info": "?time=9999-12-31T23:59:59-01:00", "meta": "workflow=good.toml",
     "id": "edge", "result": "complete"},
    {"type": "parent", "meta": "workflow=good.toml", "id": "deep", "result": "complete"},
    "not json at all",
    {"type": 5},
    {"type": "parent", "result": "maybe", "meta": "workflow=good.toml"},
    {"type": "parent", "meta": "workflow=nowhere.toml", "id": "lost", "result": "complete"},
]  # fmt: skip
BAD_FILES = ["[]", '{"path": ""}', json.dumps({"path": DEEP}), '{"path": "/fifo/a.csv"}',
             '{"path": "/loop/a.csv"}']  # fmt: skip


def line(message: object) -> str:
    if isinstance(message, str):
        return message
    if message.get("id") == "deep":  # type: ignore[union-attr]
        return json.dumps(message)[:-1] + ', "x": ' + DEEP + "}"
    return json.dumps(message)


def append(path: Path, lines: list[str]) -> None:
    with open(path, "a") as file:
        for text in lines:
            file.write(text + "\n")


def done_line(task_id: str, day: str) -> str:
    task = {"type": "parent", "info": f"?day={day}", "meta": "workflow=good.toml", "id": task_id,
            "result": "complete"}  # fmt: skip
    return json.dumps(task)


def tasks_on(bus: Path, topic: str) -> list[dict[str, str]]:
    return bus_tasks(bus, topic)


@pytest.mark.slow
def test_run_survives_every_input_channel_and_restarts_cleanly(tmp_path: Path) -> None:
    wf = tmp_path / "wf"
    write(wf, "good.toml", GOOD)
    os.mkfifo(wf / "pipe.csv")
    (wf / "loop.csv").symlink_to(wf / "loop2.csv")
    (wf / "loop2.csv").symlink_to(wf / "loop.csv")
    bus = tmp_path / "bus"
    bus.mkdir()
    append(bus / "done.jsonl", [line(m) for m in BAD_DONE])
    slow = {"type": "slow", "meta": "workflow=good.toml", "id": "s1", "result": "error"}
    append(bus / "done.jsonl", [json.dumps(slow)])
    append(bus / "files.jsonl", BAD_FILES)
    log = tmp_path / "run1.log"
    with flowlord_run(tmp_path, "run1.log") as run:
        wait_until(lambda: "flowlord running" in log.read_text(), "start-up", run)
        append(bus / "done.jsonl", [done_line("ok1", "2026-11-20")])
        append(bus / "files.jsonl", ['{"path": "/in/2026-11-20.csv"}'])
        wait_until(lambda: any(t["id"] == "ok1" for t in tasks_on(bus, "child")), "child", run)
        wait_until(lambda: tasks_on(bus, "ingest") != [], "the files task", run)
        wait_until(lambda: "tick: meta-file=pipe.csv" in log.read_text(), "a cron fire", run)
        write(wf, "poison.toml", "[[Phase]]\ntask = " + "[" * 600 + "]" * 600 + "\n")
        wait_until(lambda: "TOML nested too deeply" in log.read_text(), "the poison file", run)
        write(wf, "late.toml", GOOD.replace('"parent"', '"late"').replace("child", "late-child"))
        wait_until(lambda: "scheduled late.toml" in log.read_text(), "a later good save", run)
        assert run.poll() is None
        assert stop(run) == 0
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count("bad message on done") == len(BAD_DONE), text
    assert "no phase for parent in workflow 'nowhere.toml'" in text
    assert "invalid time='9999-12-31T23:59:59-01:00'" in text
    assert text.count("bad message on files") == 3, text
    assert "fifo: meta-file=pipe.csv: not a regular file" in text
    assert "loop: meta-file=loop.csv: cannot read" in text
    assert "tick: meta-file=pipe.csv: not a regular file" in text
    assert "slow will not run: invalid duration: retry_delay=99999999h (out of range)" in text
    failed = tasks_on(bus, "retry-failed")
    assert [t["id"] for t in failed] == ["s1"]  # no retry time ever computed for it
    assert [t["info"] for t in tasks_on(bus, "ingest")] == ["/in/2026-11-20.csv"]

    # A restart meets none of the bad messages again, and keeps working.
    (wf / "pipe.csv").unlink()
    log2 = tmp_path / "run2.log"
    with flowlord_run(tmp_path, "run2.log") as again:
        wait_until(lambda: "flowlord running" in log2.read_text(), "the restart", again)
        append(bus / "done.jsonl", [done_line("ok2", "2026-11-21")])
        wait_until(lambda: any(t["id"] == "ok2" for t in tasks_on(bus, "child")), "ok2", again)
        assert stop(again) == 0
    text2 = log2.read_text()
    assert "bad message" not in text2, text2
    assert "poison.toml: TOML nested too deeply (not loaded)" in text2  # named at start
    assert [t["id"] for t in tasks_on(bus, "child")] == ["ok1", "ok2"]


@pytest.mark.slow
def test_sigterm_during_a_long_start_up_stops_at_once(tmp_path: Path) -> None:
    wf = tmp_path / "wf"
    for number in range(3000):
        write(wf, f"f{number:04d}.toml", f'[[Phase]]\ntask = "t{number}"\nrule = "cron=@daily"\n')
    log = tmp_path / "run.log"
    with flowlord_run(tmp_path, "run.log") as run:
        wait_until(lambda: "loading workflows" in log.read_text(), "the start of loading", run)
        assert stop(run) == 0
    text = log.read_text()
    assert "stopped during start-up (stopped by SIGTERM)" in text, text
    assert "flowlord running" not in text
    assert "Traceback" not in text  # not swallowed as some file's failure either
