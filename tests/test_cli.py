"""The `flowlord` command, called as a function of argv."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowlord import logs
from flowlord.cli import main
from tests.conftest import TESTDATA, write

FINE = '[[Phase]]\ntask = "a"\nrule = "cron=@daily"\n[[Phase]]\ntask = "b"\ndependsOn = "a"\n'
WARNS = '[[Phase]]\ntask = "a"\nrule = "cron=@daily"\nretry = 11\n'
ERRS = '[[Phase]]\ntask = "a"\ndependsOn = "missing"\n'


pytestmark = pytest.mark.usefixtures("cli_home")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_fine_files_exit_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "ok.toml", FINE)
    code, out, _ = run(capsys, "validate", str(tmp_path / "ok.toml"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["file", "task", "depends_on", "rule", "status"]
    assert lines[1].split() == [str(tmp_path / "ok.toml"), "a", "cron=@daily", "ok"]
    assert lines[-1] == "1 file(s), 2 phase(s), 0 error(s)"


def test_validate_warnings_alone_exit_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "w.toml", WARNS)
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 0
    assert "warning: retry count exceeds recommended limit" in out


def test_validate_phase_error_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "ok.toml", FINE)
    write(tmp_path, "sub/bad.toml", ERRS)
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 1
    assert f"{tmp_path}/sub/bad.toml" in out
    assert "parent task not found: missing" in out
    assert out.splitlines()[-1] == "2 file(s), 3 phase(s), 1 error(s)"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("syntax.toml", "syntax.toml: line 5: TOML syntax"),
        ("wrong_type.toml", "wrong_type.toml: line 4: phase 1: retry must be an integer"),
        ("duplicate.toml", "duplicate.toml: line 9: phase 3: duplicate task a"),
        ("mixed_arrays.toml", "mixes [[Phase]] and [[phase]]"),
        ("empty.toml", "empty.toml: empty file"),
    ],
)
def test_validate_file_errors_exit_1(
    capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    code, out, _ = run(capsys, "validate", str(TESTDATA / "invalid" / name))
    assert code == 1
    assert message in out
    assert "Traceback" not in out


def test_validate_missing_path_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "ok.toml", FINE)
    code, out, _ = run(capsys, "validate", str(tmp_path / "ok.toml"), str(tmp_path / "nope"))
    assert code == 2
    assert f"error: workflow path '{tmp_path}/nope' does not exist" in out


def test_validate_unreadable_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 2
    assert f"error: {tmp_path}/loop.toml: cannot read:" in out


def test_validate_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "a.toml", ERRS)
    write(tmp_path, "b.toml", "")
    code, out, _ = run(capsys, "validate", "--json", str(tmp_path))
    assert code == 1
    files = json.loads(out)
    assert [f["file"] for f in files] == [f"{tmp_path}/a.toml", f"{tmp_path}/b.toml"]
    assert files[0]["phases"][0]["status"] == "parent task not found: missing"
    assert files[0]["phases"][0]["error"] is True
    assert files[1]["error"] == f"{tmp_path}/b.toml: empty file (not yet written?)"


def test_validate_testdata(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", str(TESTDATA / "workflows"))[0] == 0
    assert run(capsys, "validate", str(TESTDATA / "findings"))[0] == 1


def test_phases_loads_and_lists(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path / "wf", "a.toml", FINE)
    db = tmp_path / "flowlord.db"
    code, out, err = run(capsys, "phases", "--workflows", str(tmp_path / "wf"), "--db", str(db))
    assert (code, err) == (0, "")
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["a.toml", "a"], ["a.toml", "b"]]
    write(tmp_path / "wf", "a.toml", "[[Phase")
    code, out, err = run(capsys, "phases", "--workflows", str(tmp_path / "wf"), "--db", str(db))
    assert code == 1
    assert len(out.splitlines()) == 3  # last good phases kept
    assert "error: a.toml: line 1: TOML syntax" in err
    code, out, _ = run(
        capsys, "phases", "--workflows", str(tmp_path / "wf"), "--db", str(db), "--json",
        "--topic", "b",
    )  # fmt: skip
    assert code == 1  # the file is still broken, and still reported
    assert [p["task"] for p in json.loads(out)["phases"]] == ["b"]


def test_phases_missing_folder_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "phases", "--workflows", str(tmp_path / "nope"))
    assert code == 2
    assert err == (
        f"flowlord: config 'workflows' from --workflows has value '{tmp_path}/nope': "
        "does not exist\n"
    )


def test_phases_db_is_a_directory_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(tmp_path / "wf", "a.toml", FINE)
    code, _, err = run(capsys, "phases", "--workflows", str(tmp_path / "wf"), "--db", str(tmp_path))
    assert code == 2
    assert err.endswith(f"has value '{tmp_path}': is a folder, not a database file\n")


def test_console_script_entry_point(tmp_path: Path) -> None:
    write(tmp_path, "ok.toml", FINE)
    done = subprocess.run(
        [sys.executable, "-m", "flowlord", "validate", str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 file(s), 2 phase(s), 0 error(s)" in done.stdout


RFC3339_MS_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_json_log_lines() -> None:
    out = io.StringIO()
    log = logging.getLogger("flowlord.test")
    with logs.logging_to(out, level="info", log_format="json"):
        log.debug("not shown at info")
        log.info("sent %s\non two lines", "extract")
        try:
            {}["key"]
        except KeyError:
            log.exception("failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert RFC3339_MS_UTC.fullmatch(first.pop("at"))
    assert first == {"level": "info", "logger": "flowlord.test",
                     "message": "sent extract\non two lines"}  # fmt: skip
    assert second["level"] == "error" and second["message"] == "failed"
    assert second["exc"].startswith("Traceback") and "KeyError: 'key'" in second["exc"]


def test_logging_to_leaves_logging_as_it_found_it() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    out = io.StringIO()
    with logs.logging_to(out, level="debug", log_format="text") as handler:
        assert handler in root.handlers and root.level == logging.DEBUG
        logging.getLogger("flowlord.test").debug("shown")
    assert (root.level, root.handlers) == (level, handlers)
    assert out.getvalue().endswith(" DEBUG flowlord.test shown\n")


def test_log_settings_for_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "ok.toml", FINE)
    code, _, err = run(capsys, "validate", str(tmp_path), "--log-level", "loud")
    assert (code, err) == (2, "flowlord: config 'log_level' from --log-level has value 'loud': "
                              "not one of debug, info, warning, error\n")  # fmt: skip
    monkeypatch.setenv("FLOWLORD_LOG_FORMAT", "yaml")
    code, _, err = run(capsys, "validate", str(tmp_path))
    assert code == 2 and "from FLOWLORD_LOG_FORMAT has value 'yaml'" in err
    monkeypatch.setenv("FLOWLORD_LOG_FORMAT", "json")
    assert run(capsys, "validate", str(tmp_path), "--log-level", "debug")[0] == 0


def test_watch_debounce_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "watch", ".", "--debounce-ms", "-5")
    assert code == 2
    assert err == (
        "flowlord: watch: argument --debounce-ms: '-5' is not a whole number from 1 to 60000 "
        "(see flowlord watch --help)\n"
    )


def test_version_and_help_return_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and re.fullmatch(r"flowlord \S+\n", out)
    code, out, _ = run(capsys, "run", "--help")
    assert code == 0
    for flag in ("--workflows", "--max-tasks", "--log-level", "--log-format", "--config"):
        assert flag in out


ROOT = Path(__file__).resolve().parent.parent
SETUP_PREFIX = "python3 -m venv .venv && .venv/bin/pip install -e . && "


def readme_main_command() -> str:
    """The README's main command after the install, with `.venv/bin/flowlord` as this
    interpreter's `python -m flowlord` (the test runs in a folder of its own, without .venv)."""
    setup = (ROOT / "README.md").read_text().split("## Set up", 1)[1]
    block = setup.split("```sh\n", 1)[1].split("```", 1)[0]
    line = next(line for line in block.splitlines() if line.startswith(SETUP_PREFIX))
    command = line.removeprefix(SETUP_PREFIX)
    assert ".venv/bin/flowlord run" in command and ".venv/bin/flowlord worker" in command
    return command.replace(".venv/bin/flowlord", f"{shlex.quote(sys.executable)} -m flowlord")


def live_processes_in_session(session: int) -> list[str]:
    """Processes (not zombies) whose session id is `session`, from /proc."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue  # ended while we looked
        state, _, _, sid = text.rpartition(")")[2].split()[:4]
        if int(sid) == session and state != "Z":
            found.append(text[: text.rfind(")") + 1])
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_readme_main_command_exits_0_on_ctrl_c(tmp_path: Path) -> None:
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group."""
    shutil.copytree(TESTDATA / "demo", tmp_path / "testdata" / "demo")
    with open(tmp_path / "out.log", "wb") as log:
        shell = subprocess.Popen(
            ["bash", "-c", readme_main_command()], cwd=tmp_path, stdout=log, stderr=log,
            start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and shell.poll() is None:
            text = (tmp_path / "out.log").read_text()
            if "flowlord running" in text and "nop worker reading" in text:
                break
            time.sleep(0.05)  # polling the processes' log, bounded by the deadline
        assert shell.poll() is None, (tmp_path / "out.log").read_text()
        os.killpg(shell.pid, signal.SIGINT)
        assert shell.wait(timeout=20) == 0, (tmp_path / "out.log").read_text()
        assert live_processes_in_session(shell.pid) == []
        assert "nop worker stopped" in (tmp_path / "out.log").read_text()
    finally:
        if shell.poll() is None or live_processes_in_session(shell.pid):
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
