"""files= globs and meta-files (read only inside the workflow folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlord.files import MetaFiles
from tests.conftest import write
from workflow import PhaseRecord
from workflow.batch import BatchError
from workflow.files import FileRules, glob_pattern


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("s3://b/clicks/*/*.json.gz", "s3://b/clicks/20261120/p1.json.gz", True),
        ("s3://b/clicks/*/*.json.gz", "s3://b/clicks/2026/11/p1.json.gz", False),
        ("s3://b/clicks/**/*.json.gz", "s3://b/clicks/2026/11/p1.json.gz", True),
        ("s3://b/clicks/*.json.gz", "s3://b/clicks/p1.json.gz.tmp", False),
        ("/data/file-?.csv", "/data/file-1.csv", True),
        ("/data/file-?.csv", "/data/file-12.csv", False),
        ("/data/[a].csv", "/data/[a].csv", True),
    ],
)
def test_glob_pattern(glob: str, path: str, matches: bool) -> None:
    assert bool(glob_pattern(glob).match(path)) is matches


def test_meta_file_relative_to_the_workflow_file(tmp_path: Path) -> None:
    write(tmp_path / "wf", "sub/regions.csv", "region,tier\nus,1\neu,2\n")
    rows = MetaFiles(tmp_path / "wf").rows("sub/etl.toml", "regions.csv")
    assert rows == [{"region": "us", "tier": "1"}, {"region": "eu", "tier": "2"}]


@pytest.mark.parametrize("name", ["../../secret.csv", "/etc/passwd.csv", "link.csv"])
def test_meta_file_outside_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    write(tmp_path, "secret.csv", "a\n1\n")
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "link.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(BatchError, match="outside the workflow folder"):
        MetaFiles(tmp_path / "wf").rows("etl.toml", name)


def test_meta_file_missing(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match=r"meta-file=gone\.csv: cannot read"):
        MetaFiles(tmp_path).rows("etl.toml", "gone.csv")


def rules_of(**globs: str) -> FileRules:
    """One workflow file per keyword, each with one files rule; the phase's task is the key."""
    rules = FileRules()
    for key, glob in globs.items():
        phase = PhaseRecord(task=key, rule=f"files={glob}", file_path=f"{key}.toml")
        rules.set_file(f"{key}.toml", [phase])
    return rules


def test_every_matching_rule_is_found_whatever_its_literal_piece() -> None:
    rules = rules_of(
        a="s3://b/in/*.csv", b="*/in/*.csv", c="**", d="s3://b/*/x.csv", e="*.csv",
        f="s3://b/in/x.json", g="?3://b/in/x.csv",
    )  # fmt: skip
    found = [phase.task for phase in rules.matching("s3://b/in/x.csv")]
    assert found == ["a", "c", "d", "g"]  # b: `*` stays in one segment; e: same; f: .json
    assert [p.task for p in rules.matching("in/in/x.csv")] == ["b", "c"]
    assert [p.task for p in rules.matching("x.csv")] == ["c", "e"]


def test_a_piece_found_twice_in_a_path_matches_once() -> None:
    rules = rules_of(a="**/ab/**")
    assert [p.task for p in rules.matching("ab/ab/ab/ab")] == ["a"]


def test_rules_of_a_removed_or_replaced_file_are_gone() -> None:
    rules = rules_of(a="/in/*.csv", b="/in/*.csv")
    rules.remove_file("a.toml")
    assert [p.task for p in rules.matching("/in/x.csv")] == ["b"]
    rules.set_file("b.toml", [PhaseRecord(task="b", rule="files=/other/*", file_path="b.toml")])
    assert rules.matching("/in/x.csv") == []
    assert len(rules) == 1
