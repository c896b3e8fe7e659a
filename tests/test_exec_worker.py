"""The exec worker: its handler with real commands, and `flowlord worker exec` as a real process
on the file bus (stopping within and past the grace, start-up errors, a chain with `run`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flowlord import cli
from flowlord.bus import FileBus
from flowlord.worker import Outcome, Result, Task
from flowlord.worker.exec import CommandHandler, check_program
from tests.conftest import write
from tests.processes import flowlord_process, flowlord_run, stop, tasks_on, text, wait_until
from workflow.command import CommandError, CommandTemplate
from workflow.task import parse_time

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TASK = Task(type="load", job="j", info="s3://b/2026/11/21/x y.csv",
            meta="workflow=etl.toml&day=2026-11-21&retry=1", id="id-1",
            created="2026-11-21T11:00:00Z")  # fmt: skip


def run(argv: list[str], task: Task = TASK, **settings: float) -> Outcome:
    return CommandHandler(CommandTemplate.parse(argv), **settings)(task)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, killed but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for(check: Callable[[], bool], what: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.01)  # polling another process, bounded by the deadline


def pid_in(path: Path) -> int:
    wait_for(lambda: path.exists() and path.read_text().strip() != "", f"{path}")
    return int(path.read_text())


# the handler


def test_the_task_is_in_flowlord_task(tmp_path: Path) -> None:
    out = tmp_path / "task.json"
    code = "import os, sys; open(sys.argv[1], 'w').write(os.environ['FLOWLORD_TASK'])"
    assert run([PY, "-c", code, str(out)]) == Outcome(Result.COMPLETE)
    assert Task.from_json(out.read_text()) == TASK


def test_arguments_are_filled_and_never_split(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    code = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    argv = [PY, "-c", code, str(out), "{info}", "--day={meta:day}", "{print $1}", "a b", "-é-"]
    assert run(argv).result == Result.COMPLETE
    assert json.loads(out.read_text()) == [
        "s3://b/2026/11/21/x y.csv", "--day=2026-11-21", "{print $1}", "a b", "-é-"
    ]  # fmt: skip


def test_a_missing_meta_key_runs_nothing(tmp_path: Path) -> None:
    outcome = run(["touch", str(tmp_path / "ran"), "{meta:hour}"])
    assert outcome == Outcome(Result.ERROR, "meta key 'hour' is not in the task's meta")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["true"], Outcome(Result.COMPLETE)),
        (["false"], Outcome(Result.ERROR, "exit 1")),
        (["sh", "-c", "echo one >&2; echo '  no data  ' >&2; exit 3"],
         Outcome(Result.ERROR, "exit 3: one\n  no data")),
        (["sh", "-c", "echo dying >&2; kill -TERM $$"],
         Outcome(Result.ERROR, "killed by SIGTERM: dying")),
        ([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
         Outcome(Result.ERROR, "killed by SIGKILL")),
        (["/no/such/program", "x"],
         Outcome(Result.ERROR, "cannot run '/no/such/program': No such file or directory")),
        (["{meta:workflow}"],  # a program named by the task: only known when it runs
         Outcome(Result.ERROR, "cannot run 'etl.toml': No such file or directory")),
    ],
)  # fmt: skip
def test_how_a_command_ends(argv: list[str], expected: Outcome) -> None:
    assert run(argv) == expected


def test_a_program_that_is_not_executable(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("echo hi\n")
    outcome = run([str(tmp_path / "plain")])
    assert outcome == Outcome(Result.ERROR, f"cannot run '{tmp_path}/plain': Permission denied")


def test_the_tail_of_a_huge_stderr() -> None:
    code = "import sys\nfor n in range(50_000): print('x' * 99, file=sys.stderr)\n"
    code += "print('the last words', file=sys.stderr); sys.exit(2)"
    outcome = run([PY, "-c", code])  # 5 MB through the pipe: no deadlock, 64 KiB kept
    assert outcome.result == Result.ERROR
    assert outcome.msg.startswith("exit 2: …x") and outcome.msg.endswith("x\nthe last words")
    assert len(outcome.msg) == len("exit 2: ") + 2000


def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    child = tmp_path / "child"
    argv = ["sh", "-c", f"sleep 100 & echo $! > {child}; sleep 100"]
    outcome = run(argv, timeout=0.3)
    assert outcome == Outcome(Result.ERROR, "timed out after 300ms: killed")
    wait_for(lambda: not alive(pid_in(child)), "the background sleep to die")


def test_a_group_ignoring_sigterm_is_killed_after_kill_after(tmp_path: Path) -> None:
    child = tmp_path / "child"
    argv = ["sh", "-c", f"trap '' TERM; echo stuck >&2; sleep 100 & echo $! > {child}; wait"]
    started = time.monotonic()
    outcome = run(argv, timeout=0.2, kill_after=0.3)
    assert outcome == Outcome(Result.ERROR, "timed out after 200ms: killed: stuck")
    assert time.monotonic() - started >= 0.5
    wait_for(lambda: not alive(pid_in(child)), "the background sleep to die")


def test_what_a_command_leaves_running_is_killed_when_it_exits(tmp_path: Path) -> None:
    child = tmp_path / "child"
    outcome = run(["sh", "-c", f"sleep 100 & echo $! > {child}; echo bye >&2"])
    assert outcome == Outcome(Result.COMPLETE)  # not held up by the child's copy of stderr
    wait_for(lambda: not alive(pid_in(child)), "the background sleep to die")


def test_cancel_kills_every_running_command(tmp_path: Path) -> None:
    handler = CommandHandler(CommandTemplate.parse(
        ["sh", "-c", f"sleep 100 & echo $! > {tmp_path}/{{info}}; wait"]
    ))  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = [pool.submit(handler, Task(type="t", info=name)) for name in ("a", "b")]
        children = [pid_in(tmp_path / name) for name in ("a", "b")]
        handler.cancel()
        assert [f.result(timeout=10) for f in outcomes] == [
            Outcome(Result.ERROR, "killed by SIGKILL")
        ] * 2  # fmt: skip
    for pid in children:
        wait_for(lambda pid=pid: not alive(pid), "a background sleep to die")
    assert handler(Task(type="t", info="c")).msg == "cancelled: the worker is stopping"


def test_the_program_is_checked_at_start(tmp_path: Path) -> None:
    check_program(CommandTemplate.parse(["sh", "-c", "x"]))
    check_program(CommandTemplate.parse(["{info}"]))  # known only when a task comes
    (tmp_path / "plain").write_text("")
    for argv, message in [
        (["no-such-program-here"], "command 'no-such-program-here' not found (PATH="),
        ([str(tmp_path / "nope")], f"command '{tmp_path}/nope' not found"),
        ([str(tmp_path / "plain")], f"command '{tmp_path}/plain' is not executable"),
    ]:
        with pytest.raises(CommandError) as caught:
            check_program(CommandTemplate.parse(argv))
        assert str(caught.value).startswith(message)


# `flowlord worker exec` as a real process


def environment() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLORD_")}
    return {**clean, "PYTHONPATH": str(ROOT)}


def exec_worker(
    home: Path, log: str, *args: str
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """`flowlord worker exec ARGS` in `home`, its log in `home/log`; killed if still up."""
    return flowlord_process(home, log, "worker", "exec", *args, env=environment())


def send(home: Path, topic: str, *tasks: Task) -> None:
    producer = FileBus(home / "bus").producer()
    for task in tasks:
        producer.send(topic, task.to_json())
    producer.close()


def unacked(home: Path, topic: str = "work") -> list[str]:
    """The ids a new worker of the default group would get."""
    consumer = FileBus(home / "bus").consumer([topic], "workers")
    ids = []
    while (message := consumer.receive(0)) is not None:
        ids.append(Task.from_json(message.body).id)
    consumer.close()
    return ids


def done(home: Path) -> list[Task]:
    return [Task.from_json(json.dumps(t)) for t in tasks_on(home / "bus", "done")]


@pytest.mark.slow
def test_tasks_get_done_messages(tmp_path: Path) -> None:
    send(tmp_path, "work", *(Task(type="work", id=f"t{n}", info=info)
                             for n, info in enumerate(["ok", "bad", "ok"])))  # fmt: skip
    command = ["sh", "-c", 'echo "{info} of $FLOWLORD_TASK" >&2; [ "{info}" = ok ]']
    with exec_worker(tmp_path, "w.log", "--topic", "work", "--concurrency", "2", "--",
                     *command) as worker:  # fmt: skip
        wait_until(lambda: len(done(tmp_path)) == 3, "three done messages", worker)
        assert stop(worker) == 0
    found = {t.id: t for t in done(tmp_path)}
    assert [found[f"t{n}"].result for n in range(3)] == ["complete", "error", "complete"]
    assert found["t1"].msg == 'exit 1: bad of {"type":"work","info":"bad","id":"t1","created":""}'
    assert unacked(tmp_path) == []
    log = text(tmp_path, "w.log")
    assert "exec worker reading work from bus, concurrency 2" in log
    assert "exec worker stopped after 3 task(s), 0 unfinished" in log


@pytest.mark.slow
def test_sigterm_lets_the_running_command_finish(tmp_path: Path) -> None:
    send(tmp_path, "work", Task(type="work", id="t1"), Task(type="work", id="t2"))
    command = ["sh", "-c", "touch started; while [ ! -e go ]; do sleep 0.01; done"]
    with exec_worker(tmp_path, "w.log", "--topic", "work", "--", *command) as worker:
        wait_until(lambda: (tmp_path / "started").exists(), "the command", worker)
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping: waiting up to 30s" in text(tmp_path, "w.log"), "the stop",
                   worker)  # fmt: skip
        (tmp_path / "go").touch()
        assert worker.wait(timeout=10) == 0
    assert [(t.id, t.result) for t in done(tmp_path)] == [("t1", "complete")]
    assert unacked(tmp_path) == ["t2"]  # never taken: one slot, and it was busy


@pytest.mark.slow
def test_past_the_grace_the_command_is_killed_and_the_task_left_for_another(
    tmp_path: Path,
) -> None:
    send(tmp_path, "work", Task(type="work", id="t1"))
    command = ["sh", "-c", "sleep 100 & echo $! > child; wait"]
    with exec_worker(tmp_path, "w.log", "--topic", "work", "--grace", "200ms", "--",
                     *command) as worker:  # fmt: skip
        child = pid_in(tmp_path / "child")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    wait_for(lambda: not alive(child), "the command's child to die")
    assert done(tmp_path) == []
    assert "stopping now (grace of 0.2s over): 1 task(s) cancelled" in text(tmp_path, "w.log")
    with exec_worker(tmp_path, "w2.log", "--topic", "work", "--", "true") as worker:
        wait_until(lambda: len(done(tmp_path)) == 1, "the task done by the next worker", worker)
        assert stop(worker) == 0
    assert [(t.id, t.result) for t in done(tmp_path)] == [("t1", "complete")]


@pytest.mark.slow
def test_a_second_sigterm_ends_the_grace_at_once(tmp_path: Path) -> None:
    send(tmp_path, "work", Task(type="work", id="t1"))
    command = ["sh", "-c", "echo $$ > child; exec sleep 100"]
    with exec_worker(tmp_path, "w.log", "--topic", "work", "--grace", "1h", "--",
                     *command) as worker:  # fmt: skip
        child = pid_in(tmp_path / "child")
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping: waiting up to 3600s" in text(tmp_path, "w.log"),
                   "the stop", worker)  # fmt: skip
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=5) == 0
    wait_for(lambda: not alive(child), "the command to die")
    assert done(tmp_path) == [] and unacked(tmp_path) == ["t1"]
    assert "stopping now (asked again)" in text(tmp_path, "w.log")


@pytest.mark.slow
def test_start_up_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        (["--topic", "w", "--", "no-such-program-xyz"],
         "worker exec: command 'no-such-program-xyz' not found (PATH="),
        (["--topic", "w", "sh", "-c", "x"], "worker exec: give the command after -- (not "),
        (["--topic", "w", "--"], "worker exec: no command after --"),
        (["--topic", "w", "--timeout", "10 minutes", "--", "true"],
         "worker exec: argument --timeout: '10 minutes' is not a duration"),
        (["--topic", "w", "--concurrency", "257", "--", "true"],
         "worker exec: argument --concurrency: '257' is not a whole number from 1 to 256"),
        (["--topic", "done", "--", "true"], "worker exec: --topic 'done' is the done topic"),
        (["--topic", "w", "--", "echo", "{meta:}"], "worker exec: argument '{meta:}'"),
        (["--topic", "w", "--bus", "memory", "--", "true"], "config 'bus' from --bus"),
    ]  # fmt: skip

    def attempt(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PY, "-m", "flowlord", "worker", "exec", *args], cwd=tmp_path, env=environment(),
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, [args for args, _ in cases]))
    for (_, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(f"flowlord: {expected}"), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


def test_the_command_after_the_dashes_is_never_parsed_as_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["worker", "exec", "--topic", "w", "--", "no-such-prog", "-h", "--topic", "--", "x"]
    assert cli.main(argv) == 2  # not --help, not a second --topic: the program is checked
    assert capsys.readouterr().err.startswith(
        "flowlord: worker exec: command 'no-such-prog' not found"
    )
    assert cli.main(["worker", "exec", "--topic", "w", "--", "sh", "-c", "{meta:}", "--"]) == 2
    assert "argument '{meta:}'" in capsys.readouterr().err


CHAIN = """
[[Phase]]
task = "extract"
rule = "cron=* * * * * *"
template = "?hour={yyyy}-{mm}-{dd}T{hh}"

[[Phase]]
task = "transform"
dependsOn = "extract"
template = "?hour={yyyy}-{mm}-{dd}T{hh}"
"""


@pytest.mark.slow
def test_a_chain_through_run_and_an_exec_worker(tmp_path: Path) -> None:
    write(tmp_path / "wf", "etl.toml", CHAIN)
    command = ["sh", "-c", 'printf "%s\\n" "$FLOWLORD_TASK" >> ran.jsonl']
    with (
        flowlord_run(tmp_path, "run.log") as taskmaster,
        exec_worker(tmp_path, "w.log", "--topic", "extract", "--topic", "transform",
                    "--", *command) as worker,
    ):  # fmt: skip

        def chained() -> bool:
            return any(t.type == "transform" and t.result == "complete" for t in done(tmp_path))

        wait_until(chained, "a transform done", taskmaster, worker)
        assert stop(worker) == 0
        assert stop(taskmaster) == 0
    answers = done(tmp_path)
    transform = next(t for t in answers if t.type == "transform")
    parent = next(t for t in answers if t.type == "extract" and t.id == transform.id)
    assert parent.result == "complete"
    sent = next(t for t in tasks_on(tmp_path / "bus", "transform") if t["id"] == transform.id)
    assert parse_time(sent["created"], "created") >= parse_time(parent.ended, "ended")
    ran = [json.loads(line) for line in (tmp_path / "ran.jsonl").read_text().splitlines()]
    assert {"extract", "transform"} <= {t["type"] for t in ran}
    listed = subprocess.run(
        [PY, "-m", "flowlord", "tasks", "--json", "--type", "transform"], cwd=tmp_path,
        env=environment(), capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    records = json.loads(listed.stdout)["tasks"]
    assert any(r["id"] == transform.id and r["state"] == "complete" for r in records)
