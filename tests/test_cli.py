"""The `flowlord` command, called as a function of argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowlord.cli import main
from tests.conftest import TESTDATA, write

FINE = '[[Phase]]\ntask = "a"\nrule = "cron=@daily"\n[[Phase]]\ntask = "b"\ndependsOn = "a"\n'
WARNS = '[[Phase]]\ntask = "a"\nrule = "cron=@daily"\nretry = 11\n'
ERRS = '[[Phase]]\ntask = "a"\ndependsOn = "missing"\n'


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
    assert "workflow path" in err and "nope" in err


def test_phases_db_is_a_directory_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(tmp_path / "wf", "a.toml", FINE)
    code, _, err = run(capsys, "phases", "--workflows", str(tmp_path / "wf"), "--db", str(tmp_path))
    assert code == 2
    assert "is a directory" in err


def test_console_script_entry_point(tmp_path: Path) -> None:
    write(tmp_path, "ok.toml", FINE)
    done = subprocess.run(
        [sys.executable, "-m", "flowlord", "validate", str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 file(s), 2 phase(s), 0 error(s)" in done.stdout
