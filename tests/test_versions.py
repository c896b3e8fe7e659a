"""`workflow_versions`: the migration, the versions a refresh stores with the phases, the cap,
history that outlives a file, and the diff of two versions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from cache import RefreshError, SQLiteCache
from cache.schema import MIGRATIONS, SCHEMA_VERSION
from cache.sqlite_store import KEPT_VERSIONS
from tests.conftest import Clock
from workflow.diff import unified_diff
from workflow.validate import VALIDATION_VERSION

GOOD = '[[Phase]]\ntask = "{name}"\nrule = "cron=@daily"\n'


def good(name: str) -> str:
    return GOOD.format(name=name)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "workflows"
    (root / "sub").mkdir(parents=True)
    (root / "a.toml").write_text(good("a"))
    (root / "sub" / "b.toml").write_text(good("b"))
    return root


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


@pytest.fixture
def cache(folder: Path, db: Path, clock: Clock) -> Iterator[SQLiteCache]:
    cache = SQLiteCache(folder, db, now=clock)
    yield cache
    cache.close()


def hashes(cache: SQLiteCache, key: str) -> list[str]:
    return [v.file_hash for v in cache.versions(key)]


def test_new_database_has_the_versions_table_and_index(db: Path, folder: Path) -> None:
    SQLiteCache(folder, db).close()
    raw = apsw.Connection(str(db))
    assert raw.execute("PRAGMA user_version").fetchall() == [(SCHEMA_VERSION,)] == [(3,)]
    columns = [row[1] for row in raw.execute("PRAGMA table_info(workflow_versions)")]
    assert columns == ["seq", "file_path", "file_hash", "loaded_at", "content"]
    indexes = {row[1] for row in raw.execute("PRAGMA index_list(workflow_versions)")}
    assert "idx_versions_newest" in indexes
    assert raw.execute("PRAGMA foreign_key_list(workflow_versions)").fetchall() == []
    raw.close()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT file_hash FROM workflow_versions WHERE file_path = 'a.toml' ORDER BY seq DESC",
        "SELECT content FROM workflow_versions WHERE file_path = 'a.toml' AND file_hash = 'x'",
    ],
)
def test_version_lookups_use_an_index(cache: SQLiteCache, db: Path, query: str) -> None:
    raw = apsw.Connection(str(db))
    plan = " ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {query}"))
    raw.close()
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_a_refresh_stores_each_loaded_files_bytes(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    data = (folder / "sub" / "b.toml").read_bytes()
    [version] = cache.versions("sub/b.toml")
    assert (version.file_hash, version.size) == (sha(data), len(data))
    assert version.loaded_at == cache.workflow_file("sub/b.toml").loaded_at
    assert cache.version("sub/b.toml", sha(data)) == data
    assert cache.version("sub/b.toml", sha(b"other")) is None
    assert cache.version("a.toml", sha(data)) is None  # a version belongs to its file


def test_history_is_newest_first_and_one_row_per_content(
    cache: SQLiteCache, folder: Path, clock: Clock
) -> None:
    cache.refresh()
    first = (folder / "a.toml").read_bytes()
    (folder / "a.toml").write_text(good("a2"))
    cache.refresh_files(["a.toml"])
    second = (folder / "a.toml").read_bytes()
    assert hashes(cache, "a.toml") == [sha(second), sha(first)]
    (folder / "a.toml").write_bytes(first)  # back to the first bytes: they are the newest now
    cache.refresh_files(["a.toml"])  # same clock reading: the order is the storage order
    assert hashes(cache, "a.toml") == [sha(first), sha(second)]


def test_bytes_that_fail_to_load_add_no_version(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    before = hashes(cache, "a.toml")
    (folder / "a.toml").write_text("not = [toml")
    with pytest.raises(RefreshError):
        cache.refresh_files(["a.toml"])
    assert hashes(cache, "a.toml") == before


def test_the_last_50_versions_are_kept(cache: SQLiteCache, folder: Path, clock: Clock) -> None:
    cache.refresh()
    written = [(folder / "a.toml").read_bytes()]
    for n in range(KEPT_VERSIONS + 1):
        clock.advance(seconds=1)
        (folder / "a.toml").write_text(good(f"a{n}"))
        cache.refresh_files(["a.toml"])
        written.append((folder / "a.toml").read_bytes())
    assert len(written) == 52
    assert hashes(cache, "a.toml") == [sha(data) for data in reversed(written[-50:])]
    assert cache.version("a.toml", sha(written[1])) is None
    assert cache.version("a.toml", sha(written[2])) == written[2]
    assert len(cache.versions("sub/b.toml")) == 1  # another file's history is its own


def test_history_outlives_the_file(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    data = (folder / "a.toml").read_bytes()
    (folder / "a.toml").unlink()
    assert cache.refresh() == ["-a.toml"]
    assert cache.workflow_file("a.toml") is None
    assert cache.version("a.toml", sha(data)) == data


def test_a_version_that_cannot_be_stored_keeps_the_old_phases(
    cache: SQLiteCache, folder: Path, db: Path
) -> None:
    """The version is written in the transaction of the phases: one fails, both do."""
    cache.refresh()
    other = apsw.Connection(str(db))
    other.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON workflow_versions WHEN NEW.file_path = 'a.toml' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned version'); END"
    )
    other.close()
    (folder / "a.toml").write_text(good("a2"))
    (folder / "sub" / "b.toml").write_text(good("b2"))
    with pytest.raises(RefreshError) as raised:
        cache.refresh()
    assert raised.value.errors == {"a.toml": "a.toml: cannot store: poisoned version"}
    assert [p.task for p in cache.phases("a.toml")] == ["a"]
    assert [p.task for p in cache.phases("sub/b.toml")] == ["b2"]
    assert len(cache.versions("a.toml")) == 1
    assert len(cache.versions("sub/b.toml")) == 2


def version_2_database(db: Path, folder: Path, keys: list[str]) -> None:
    """A database as flowlord left it before `workflow_versions`: schema version 2, every file
    loaded with the current validator, so only the migration can make a refresh parse it."""
    raw = apsw.Connection(str(db))
    for number, migration in enumerate(MIGRATIONS[:2], 1):
        raw.execute(migration)
        raw.execute(f"PRAGMA user_version = {number}")
    for key in keys:
        data = (folder / key).read_bytes()
        raw.execute(
            "INSERT INTO workflow_files (file_path, file_hash, loaded_at, validation) "
            "VALUES (?, ?, '2026-01-01T00:00:00Z', ?)",
            (key, sha(data), VALIDATION_VERSION),
        )
        topic = key.rsplit("/", 1)[-1].removesuffix(".toml")
        raw.execute(
            "INSERT INTO workflow_phases (file_path, task, topic, rule, position) "
            "VALUES (?, ?, ?, 'cron=@daily', 0)",
            (key, topic, topic),
        )
    raw.close()


def test_an_old_database_migrates_and_records_versions_after_a_refresh(
    folder: Path, db: Path, clock: Clock
) -> None:
    version_2_database(db, folder, ["a.toml", "sub/b.toml"])
    cache = SQLiteCache(folder, db, now=clock)
    try:
        assert [p.task for p in cache.phases()] == ["a", "b"]  # kept through the migration
        assert cache.versions("a.toml") == []
        assert cache.refresh() == ["a.toml", "sub/b.toml"]  # parsed again, though unchanged
        assert cache.last_refresh.parsed == 2
        for key in ("a.toml", "sub/b.toml"):
            data = (folder / key).read_bytes()
            assert hashes(cache, key) == [sha(data)]
            assert cache.version(key, sha(data)) == data
        assert cache.refresh() == []  # once: the validation version is current again
        assert cache.last_refresh.parsed == 0
    finally:
        cache.close()
    raw = apsw.Connection(str(db))
    assert raw.execute("PRAGMA user_version").fetchall() == [(3,)]
    raw.close()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("a\nb\n", "a\nb\n", ""),
        ("a\nb\nc\n", "a\nB\nc\n", "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"),
        ("", "a\n", "--- x\n+++ y\n@@ -0,0 +1 @@\n+a\n"),
        (
            "a\n",
            "a",  # only the final newline went: shown, as diff -u shows it
            "--- x\n+++ y\n@@ -1 +1 @@\n-a\n+a\n\\ No newline at end of file\n",
        ),
        ("s = 'a\fb'\n", "s = 'a\fc'\n", "--- x\n+++ y\n@@ -1 +1 @@\n-s = 'a\fb'\n+s = 'a\fc'\n"),
    ],
)
def test_unified_diff(old: str, new: str, expected: str) -> None:
    assert unified_diff(old, new, old_name="x", new_name="y") == expected
