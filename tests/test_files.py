"""files= globs and meta-files (read only inside the workflow folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlord.files import MetaFiles
from tests.conftest import write
from workflow.batch import BatchError
from workflow.files import glob_pattern


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
