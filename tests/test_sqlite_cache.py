"""SQLiteCache beyond the contract: persistence, the load short-cuts, transactions, query plans."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from cache import RefreshError, SchemaError, SQLiteCache
from cache.sqlite import LOOKUP_QUERIES
from tests.conftest import FIXED_NOW, fixed_now, write
from workflow import Task

GOOD = (
    '[[Phase]]\ntask = "{name}"\nrule = "cron=@daily"\n\n'
    '[[Phase]]\ntask = "{name}-child"\ndependsOn = "{name}"\n'
)
OLD = 1_600_000_000  # an mtime far outside the racy window


def good(name: str) -> str:
    return GOOD.format(name=name)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "workflows"
    for name in ("a", "b", "c"):
        write(root, f"{name}.toml", good(name))
        os.utime(root / f"{name}.toml", (OLD, OLD))
    return root


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


@pytest.fixture
def cache(folder: Path, db: Path) -> Iterator[SQLiteCache]:
    cache = SQLiteCache(folder, db, now=fixed_now)
    yield cache
    cache.close()


def tasks_of(cache: SQLiteCache, file_path: str | None = None) -> list[str]:
    return [p.task for p in cache.phases(file_path)]


def test_restart_reparses_only_files_changed_while_down(folder: Path, db: Path) -> None:
    first = SQLiteCache(folder, db, now=fixed_now)
    assert first.refresh() == ["a.toml", "b.toml", "c.toml"]
    assert first.last_refresh.parsed == 3
    first.close()

    write(folder, "b.toml", good("b2"))
    (folder / "c.toml").unlink()
    write(folder, "d.toml", good("d"))

    second = SQLiteCache(folder, db, now=fixed_now)
    assert tasks_of(second, "a.toml") == ["a", "a-child"]  # served before any refresh
    assert second.refresh() == ["b.toml", "d.toml", "-c.toml"]
    assert second.last_refresh.parsed == 2
    assert tasks_of(second) == ["a", "a-child", "b2", "b2-child", "d", "d-child"]
    second.close()


def test_same_bytes_are_hashed_not_parsed(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    os.utime(folder / "a.toml", (OLD + 60, OLD + 60))
    assert cache.refresh() == []
    assert (cache.last_refresh.hashed, cache.last_refresh.parsed) == (1, 0)


def test_unchanged_signature_skips_hashing(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    assert cache.refresh() == []
    assert (cache.last_refresh.files, cache.last_refresh.hashed) == (3, 0)


def test_recent_files_are_always_hashed(cache: SQLiteCache, folder: Path) -> None:
    """Racy-git rule: a same-size rewrite within the mtime granularity must still be seen."""
    write(folder, "a.toml", good("x"))
    cache.refresh()
    stat = (folder / "a.toml").stat()
    write(folder, "a.toml", good("y"))
    os.utime(folder / "a.toml", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.refresh() == ["a.toml"]
    assert tasks_of(cache, "a.toml") == ["y", "y-child"]


def test_a_refresh_commits_once(folder: Path, db: Path) -> None:
    commits: list[int] = []

    def count_commits(connection: apsw.Connection) -> None:
        connection.set_commit_hook(lambda: commits.append(1) or False)

    apsw.connection_hooks.append(count_commits)
    try:
        cache = SQLiteCache(folder, db, now=fixed_now)
    finally:
        apsw.connection_hooks.remove(count_commits)
    commits.clear()
    assert len(cache.refresh()) == 3
    assert len(commits) == 1
    assert cache.refresh() == []
    assert len(commits) == 1  # nothing to write, no transaction
    cache.close()


def test_a_file_that_cannot_be_stored_is_rolled_back_alone(
    cache: SQLiteCache, folder: Path, db: Path
) -> None:
    cache.refresh()
    other = apsw.Connection(str(db))
    other.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON workflow_phases WHEN NEW.task = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned phase'); END"
    )
    other.close()
    write(folder, "a.toml", good("a2") + '[[Phase]]\ntask = "poison"\ndependsOn = "a2"\n')
    write(folder, "b.toml", good("b2"))
    with pytest.raises(RefreshError) as raised:
        cache.refresh()
    assert raised.value.errors == {"a.toml": "a.toml: cannot store: poisoned phase"}
    assert raised.value.changed == ["b.toml"]
    assert tasks_of(cache, "a.toml") == ["a", "a-child"]  # not half of the new version
    assert tasks_of(cache, "b.toml") == ["b2", "b2-child"]


def test_workflow_files_rows(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    write(folder, "new.toml", "not = [toml")
    with pytest.raises(RefreshError):
        cache.refresh()
    files = {f.file_path: f for f in cache.workflow_files()}
    assert sorted(files) == ["a.toml", "b.toml", "c.toml", "new.toml"]
    assert files["a.toml"].loaded_at == FIXED_NOW
    assert files["a.toml"].last_modified.timestamp() == OLD
    assert files["a.toml"].error == ""
    assert len(files["a.toml"].file_hash) == 64
    assert files["new.toml"].file_hash == ""  # never loaded: a row so its error can be shown
    assert files["new.toml"].error.startswith("new.toml: line 1: TOML syntax")
    assert tasks_of(cache, "new.toml") == []


def test_broken_file_error_recorded_then_cleared(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    good_bytes = (folder / "a.toml").read_bytes()
    write(folder, "a.toml", '[[Phase]]\ntask = "a"\nretry = "three"\n')
    with pytest.raises(RefreshError) as raised:
        cache.refresh()
    message = "a.toml: line 3: phase 1: retry must be an integer, got string 'three'"
    assert raised.value.errors == {"a.toml": message}
    assert tasks_of(cache, "a.toml") == ["a", "a-child"]
    assert cache.workflow_files()[0].error == message

    assert cache.refresh() == []
    assert cache.last_refresh.parsed == 0  # same broken bytes: not parsed, not reported

    (folder / "a.toml").write_bytes(good_bytes)
    assert cache.refresh() == ["a.toml"]
    assert cache.last_refresh.parsed == 0  # back to the last good bytes: no parse needed
    assert cache.workflow_files()[0].error == ""


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"<html>not toml</html>", "a.toml: line 1: TOML syntax"),
        (b'[[Phase]]\ntask = "a"\nrule = "x=1"\nretry = "three"\n',
         "a.toml: line 4: phase 1: retry"),
        (b'[[Phase]]\ntask = "a"\nrule = "x=1"\n[[Phase]]\ntask = "a"\nrule = "y=1"\n',
         "a.toml: line 4: phase 2: duplicate task a"),
        (b"", "a.toml: empty file"),
        (b"\n   \n", "a.toml: empty file"),
        (b'[[Phase]]\ntask = "\xff\xfe"\n', "a.toml: line 2: not UTF-8 text"),
        (os.urandom(64) + b"\x00\xff", "a.toml: line"),
    ],
)  # fmt: skip
def test_bad_content_keeps_phases(
    cache: SQLiteCache, folder: Path, content: bytes, problem: str
) -> None:
    cache.refresh()
    (folder / "a.toml").write_bytes(content)
    with pytest.raises(RefreshError) as raised:
        cache.refresh()
    assert raised.value.errors["a.toml"].startswith(problem)
    assert problem in str(raised.value)
    assert tasks_of(cache, "a.toml") == ["a", "a-child"]
    assert cache.get(Task(type="a", meta="workflow=a.toml")).task == "a"


def test_symlink_loop_is_unreadable(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    (folder / "loop.toml").symlink_to(folder / "loop.toml")
    with pytest.raises(RefreshError) as raised:
        cache.refresh()
    assert raised.value.errors["loop.toml"].startswith("loop.toml: cannot read:")
    assert len(tasks_of(cache)) == 6


def test_symlink_out_of_the_folder_is_refused(cache: SQLiteCache, folder: Path) -> None:
    write(folder.parent / "outside", "secret.toml", good("secret"))
    (folder / "link.toml").symlink_to(folder.parent / "outside" / "secret.toml")
    with pytest.raises(RefreshError) as raised:
        cache.refresh()
    assert raised.value.errors == {
        "link.toml": "link.toml: symlink points outside the workflow folder"
    }
    assert "secret" not in tasks_of(cache)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_unreadable(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    (folder / "a.toml").chmod(0)
    with pytest.raises(RefreshError, match=r"a\.toml: cannot read: Permission denied"):
        cache.refresh()
    assert tasks_of(cache, "a.toml") == ["a", "a-child"]


def test_file_over_the_size_limit(folder: Path, db: Path) -> None:
    size = (folder / "a.toml").stat().st_size
    cache = SQLiteCache(folder, db, now=fixed_now, max_bytes=size - 1)
    with pytest.raises(RefreshError) as raised:
        cache.refresh()
    assert (
        raised.value.errors["a.toml"]
        == f"a.toml: file is {size} bytes, over the limit of {size - 1}"
    )
    cache.close()


def test_folder_named_like_a_toml_file_is_walked(cache: SQLiteCache, folder: Path) -> None:
    write(folder, "odd.toml/inner.toml", good("inner"))
    assert "odd.toml/inner.toml" in cache.refresh()


def test_database_path_that_is_a_directory(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        SQLiteCache(folder, tmp_path)


def test_database_that_is_not_sqlite(folder: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SchemaError, match=r"junk\.db"):
        SQLiteCache(folder, junk)


def test_database_from_a_newer_flowlord(folder: Path, db: Path) -> None:
    SQLiteCache(folder, db).close()
    connection = apsw.Connection(str(db))
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(SchemaError, match="schema version 99"):
        SQLiteCache(folder, db)


def test_workflow_folder_deleted_keeps_phases(cache: SQLiteCache, folder: Path) -> None:
    cache.refresh()
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    with pytest.raises(FileNotFoundError, match="workflows"):
        cache.refresh()
    assert len(tasks_of(cache)) == 6


def test_phase_filters_and_parents(tmp_path: Path, db: Path) -> None:
    root = tmp_path / "wf"
    write(root, "f.toml", """
        [[Phase]]
        task = "p:x"
        rule = "cron=@daily"
        [[Phase]]
        task = "p:y"
        rule = "cron=@hourly"
        [[Phase]]
        task = "c"
        dependsOn = "p"
        [[Phase]]
        task = "d"
        dependsOn = "p:y"
        retry = 11
        [[Phase]]
        task = "e"
        dependsOn = "gone"
    """)  # fmt: skip
    cache = SQLiteCache(root, db, now=fixed_now)
    cache.refresh()
    assert [p.task for p in cache.phases(topic="p")] == ["p:x", "p:y"]
    assert [p.task for p in cache.phases(depends_on="p:y")] == ["d"]
    assert [p.task for p in cache.phases(status="warning")] == ["d"]
    assert [p.task for p in cache.phases(status="parent task not found")] == ["e"]
    assert cache.phases("nope.toml") == []
    assert [p.task for p in cache.parents("f.toml", "c")] == ["p:x", "p:y"]
    assert [p.task for p in cache.parents("f.toml", "d")] == ["p:y"]
    assert cache.parents("f.toml", "p:x") == []
    cache.close()


@pytest.mark.parametrize("name", sorted(LOOKUP_QUERIES))
def test_lookups_use_an_index(cache: SQLiteCache, db: Path, name: str) -> None:
    cache.refresh()
    query = LOOKUP_QUERIES[name]
    connection = apsw.Connection(str(db))
    plan = connection.execute(f"EXPLAIN QUERY PLAN {query}", ("x",) * query.count("?")).fetchall()
    connection.close()
    details = [row[-1] for row in plan]
    assert any("USING" in d and "INDEX" in d for d in details), details
    assert not any(d.startswith("SCAN") for d in details), details


def test_status_filter_reads_only_flagged_phases(cache: SQLiteCache, db: Path) -> None:
    connection = apsw.Connection(str(db))
    query = "SELECT task FROM workflow_phases WHERE status > '' AND instr(status, ?) > 0"
    plan = [row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {query}", ("x",))]
    connection.close()
    assert plan == ["SEARCH workflow_phases USING INDEX idx_phases_status (status>?)"]
