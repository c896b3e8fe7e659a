"""No traceback for bad input: each command, as a real process, exits 2 with one `flowlord:` line.

`main(argv)` is called directly where a process cannot carry the input (a NUL byte) or adds
nothing to the check (argparse usage errors, an internal error made on purpose).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import apsw
import pytest

from flowlord import cli, logs, version
from flowlord.config import RunConfig
from tests.conftest import write

ROOT = Path(__file__).resolve().parent.parent
FINE = '[[Phase]]\ntask = "a"\nrule = "cron=@daily"\n'


def flowlord(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m flowlord ARGS` with no FLOWLORD_* settings but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLORD_")}
    return subprocess.run(
        [sys.executable, "-m", "flowlord", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
        env={**clean, **(env or {}), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """Assert the process failed as bad input should; return the message."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith("flowlord: "), done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr
    return done.stderr.removeprefix("flowlord: ").rstrip("\n")


# validate


def test_validate_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.toml")
    for path, shown in [("x.toml", "x.toml"), (str(tmp_path), f"{tmp_path}/x.toml")]:
        message = one_line_error(flowlord("validate", path, cwd=tmp_path))
        assert message.startswith(f"{shown}: ") and "not a regular file" in message


def test_validate_missing_path(tmp_path: Path) -> None:
    message = one_line_error(flowlord("validate", "nope", cwd=tmp_path))
    assert "'nope'" in message and "does not exist" in message


def make_deep_folders(root: Path) -> None:
    """Folders nested so deep that the full path of the last is over PATH_MAX (4096): listing
    it fails with ENAMETOOLONG, for root too. Made relative to each parent's descriptor."""
    descriptor = os.open(root, os.O_RDONLY)
    try:
        for _ in range(20):
            os.mkdir("d" * 250, dir_fd=descriptor)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = inner
    finally:
        os.close(descriptor)


def test_validate_folder_whose_subfolder_cannot_be_listed(tmp_path: Path) -> None:
    write(tmp_path / "wf", "ok.toml", FINE)
    make_deep_folders(tmp_path / "wf")
    try:
        done = flowlord("validate", "wf", cwd=tmp_path)
        message = one_line_error(done)
        assert message.startswith("wf/ddd") and "File name too long" in message
        assert "wf/ok.toml  a" in done.stdout  # the readable file is still reported
    finally:
        shutil.rmtree(tmp_path / "wf")  # rmtree works by descriptors, so deep paths are fine


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists a folder whatever its mode")
def test_validate_folder_without_permission(tmp_path: Path) -> None:
    write(tmp_path / "wf" / "locked", "x.toml", FINE)
    (tmp_path / "wf" / "locked").chmod(0)
    try:
        message = one_line_error(flowlord("validate", "wf", cwd=tmp_path))
        assert message.startswith("wf/locked") and "Permission denied" in message
    finally:
        (tmp_path / "wf" / "locked").chmod(0o755)


def test_validate_path_with_nul_byte(capsys: pytest.CaptureFixture[str]) -> None:
    """execve cannot pass a NUL byte, so this one is a call of main()."""
    assert cli.main(["validate", "wf\0.toml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "flowlord: validate: argument PATH: 'wf\\x00.toml' contains a NUL character "
        "(see flowlord validate --help)\n"
    )


# phases, watch


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A real cache database made by `flowlord phases`."""
    write(tmp_path / "wf", "a.toml", FINE)
    done = flowlord("phases", "--workflows", "wf", "--db", "flowlord.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "flowlord.db-wal").exists()  # all in the main file after close
    return tmp_path / "flowlord.db"


def test_phases_on_a_corrupted_page(database: Path) -> None:
    connection = apsw.Connection(str(database))
    page_size = connection.execute("PRAGMA page_size").fetchall()[0][0]
    query = "SELECT rootpage FROM sqlite_schema WHERE name = 'workflow_files'"
    page = connection.execute(query).fetchall()[0][0]
    connection.close()
    assert page > 1  # not the header page
    with open(database, "r+b") as file:
        file.seek((page - 1) * page_size)
        file.write(b"\xff" * page_size)
    connection = apsw.Connection(str(database))
    with pytest.raises(apsw.CorruptError):
        connection.execute("SELECT * FROM workflow_files").fetchall()
    connection.close()
    done = flowlord("phases", "--workflows", "wf", "--db", "flowlord.db", cwd=database.parent)
    message = one_line_error(done)
    assert message == "database 'flowlord.db': CorruptError: database disk image is malformed"


def test_phases_on_a_newer_schema(database: Path) -> None:
    connection = apsw.Connection(str(database))
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    done = flowlord("phases", "--workflows", "wf", "--db", "flowlord.db", cwd=database.parent)
    message = one_line_error(done)
    assert message.startswith("database 'flowlord.db'") and "schema version 99" in message


def test_phases_db_is_a_folder(tmp_path: Path) -> None:
    write(tmp_path / "wf", "a.toml", FINE)
    (tmp_path / "db").mkdir()
    message = one_line_error(flowlord("phases", "--workflows", "wf", "--db", "db", cwd=tmp_path))
    assert message == "config 'db' from --db has value 'db': is a folder, not a database file"


def test_watch_missing_path(tmp_path: Path) -> None:
    message = one_line_error(flowlord("watch", "nope", cwd=tmp_path))
    assert "'nope'" in message and "does not exist" in message


# worker


def test_worker_bus_dir_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    done = flowlord("worker", "nop", "--topics", "a", "--bus-dir", "plain", cwd=tmp_path)
    assert one_line_error(done) == (
        "config 'bus_dir' from --bus-dir has value 'plain': exists and is not a folder"
    )
    (tmp_path / "bus").write_text("")  # the default, just as checked
    message = one_line_error(flowlord("worker", "nop", "--topics", "a", cwd=tmp_path))
    assert message.startswith("config 'bus_dir' from the default has value 'bus'")


def test_worker_bad_topics(tmp_path: Path) -> None:
    message = one_line_error(flowlord("worker", "nop", "--topics", "a,b c", cwd=tmp_path))
    assert message.startswith("--topics: invalid topic 'b c'")
    env = {"FLOWLORD_DONE_TOPIC": "d/../x"}
    message = one_line_error(flowlord("worker", "nop", "--topics", "a", cwd=tmp_path, env=env))
    assert message.startswith("config 'done_topic' from FLOWLORD_DONE_TOPIC has value 'd/../x'")


# run, with each bad setting from a flag, the environment and a file

ABSURD_ZONES = ("", " ", "../../etc/passwd", "A" * 5000, "/etc/localtime", "Europe/",
                "posix/../../x")  # fmt: skip
BAD_RUN_SETTINGS = [  # (setting, value, TOML literal, reason)
    ("max_tasks", "inf", "inf", "not an integer"),
    ("max_tasks", "1.5", "1.5", "not an integer"),
    ("max_tasks", "0", "0", "must be between 1 and 1000000"),
    ("done_topic", "a b", '"a b"', "not a topic"),
    ("failed_topic", "done", '"done"', "the same topic as 'done_topic'"),
    *[("timezone", zone, f'"{zone}"', "not a known time zone") for zone in ABSURD_ZONES],
    ("timezone", "UTC\0", '"UTC\\u0000"', "contains a NUL character"),  # only a file can say it
    ("bus_dir", "plain-file", '"plain-file"', "exists and is not a folder"),
    ("db", "folder", '"folder"', "is a folder, not a database file"),
    ("db", "missing/x.db", '"missing/x.db"', "does not exist"),
    ("log_level", "loud", '"loud"', "not one of debug, info, warning, error"),
]


def run_with_bad_setting(folder: Path, origin: str, case: tuple[str, str, str, str]) -> str:
    """One `flowlord run` in its own folder; returns what went wrong, or ''."""
    name, value, literal, why = case
    write(folder / "conf" / "wf", "a.toml", FINE)
    (folder / "conf" / "plain-file").write_text("")
    (folder / "conf" / "folder").mkdir()
    (folder / "conf" / "flowlord.toml").write_text('workflows = "wf"\n')
    flag, variable = f"--{name.replace('_', '-')}", f"FLOWLORD_{name.upper()}"
    # Paths in flags and the environment start from the current folder: run in conf/.
    # Paths in the file start from its folder: run one folder up, where they would not resolve.
    cwd, args, env, where = folder / "conf", ["run"], {}, flag
    if origin == "flag":
        args += [flag, value]
    elif origin == "env":
        env[variable], where = value, variable
    else:
        with open(folder / "conf" / "flowlord.toml", "a") as file:
            file.write(f"{name} = {literal}\n")
        cwd, args, where = (
            folder,
            ["run", "--config", "conf/flowlord.toml"],
            f"{folder}/conf/flowlord.toml",
        )
    done = flowlord(*args, cwd=cwd, env=env)
    try:
        message = one_line_error(done)
    except AssertionError as err:
        return f"{origin} {name}={value[:20]!r}: {err}"
    if not message.startswith(f"config {name!r} from {where} has value ") or why not in message:
        return f"{origin} {name}={value[:20]!r}: {message!r}"
    return ""


@pytest.mark.slow
def test_run_refuses_each_bad_setting_from_flag_env_and_file(tmp_path: Path) -> None:
    jobs = [
        (tmp_path / f"{origin}-{number}", origin, case)
        for origin in ("flag", "env", "file")
        for number, case in enumerate(BAD_RUN_SETTINGS)
        if origin == "file" or "\0" not in case[1]  # execve cannot pass a NUL byte
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = list(pool.map(lambda job: run_with_bad_setting(*job), jobs))
    assert [p for p in problems if p] == []
    assert len(problems) == 3 * len(BAD_RUN_SETTINGS) - 2


def test_run_config_file_errors(tmp_path: Path) -> None:
    write(tmp_path / "wf", "a.toml", FINE)
    (tmp_path / "flowlord.toml").write_text('workflows = "wf"\ncolour = "red"\n')
    message = one_line_error(flowlord("run", cwd=tmp_path))
    assert message.startswith(f"config file {tmp_path}/flowlord.toml: unknown setting(s) 'colour'")
    (tmp_path / "flowlord.toml").write_text('workflows = "wf"\ntimezone = \n')
    message = one_line_error(flowlord("run", cwd=tmp_path))
    assert message.startswith(f"config file {tmp_path}/flowlord.toml: not TOML: ")
    assert "(at line 2, column" in message


# the command line itself, and internal errors


def test_usage_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = one_line_error(flowlord("run", "--no-such-flag", cwd=tmp_path))
    assert message == "unrecognized arguments: --no-such-flag (see flowlord --help)"
    for argv, expected in [
        (["worker", "busy"], "flowlord: worker: argument kind: invalid choice: 'busy'"),
        ([], "flowlord: the following arguments are required: COMMAND"),
        (["phases", "--db"], "flowlord: phases: argument --db: expected one argument"),
    ]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(expected) and err.count("\n") == 1


def test_version(tmp_path: Path) -> None:
    done = flowlord("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"flowlord {version()}\n", "")
    assert version() != "unknown"


def test_version_from_a_source_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert version() == "0.1.0+source"


def test_internal_error_is_one_line_and_the_log_has_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(args: argparse.Namespace, config: RunConfig) -> int:
        return {"present": 1}["missing"]

    command = cli.Command(broken, cli.LOGGING)
    args = argparse.Namespace(name="broken")
    assert cli._run(command, args, RunConfig()) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err == (
        "flowlord: internal error: KeyError: 'missing'; "
        "run with --log-level debug for the traceback\n"
    )
    log = io.StringIO()
    with logs.logging_to(log, level="debug", log_format="text"):
        assert cli._run(command, args, RunConfig()) == cli.EXIT_INTERNAL
    assert "internal error in broken" in log.getvalue()
    assert "Traceback (most recent call last)" in log.getvalue()
    assert "KeyError: 'missing'" in log.getvalue()
