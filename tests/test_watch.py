"""Hot reload with the real watcher and real files: every way an editor saves."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cache import MemoryCache, SQLiteCache
from cache.watcher import WatchSettings
from tests.conftest import fixed_now, write

FAST = WatchSettings(debounce_ms=20, step_ms=5, wake_ms=100, full_refresh_every=0)
TIMEOUT = 10.0


def workflow(name: str, version: str = "v1") -> str:
    return (
        f'[[Phase]]\ntask = "{name}"\nrule = "cron=@daily"\ntemplate = "{version}"\n\n'
        f'[[Phase]]\ntask = "{name}-child"\ndependsOn = "{name}"\ntemplate = "{version}"\n'
    )


class Events:
    """Collects what the watcher reports and lets a test wait for a state, with a timeout."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.errors: list[Exception] = []
        self._changed = threading.Condition()

    def on_change(self, keys: list[str]) -> None:
        with self._changed:
            self.batches.append(keys)
            self._changed.notify_all()

    def on_error(self, err: Exception) -> None:
        with self._changed:
            self.errors.append(err)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.05))
        return True

    def keys_seen(self) -> set[str]:
        return {key for batch in self.batches for key in batch}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "workflows"
    write(root, "a.toml", workflow("a"))
    write(root, "sub/b.toml", workflow("b"))
    return root


@pytest.fixture
def watched(folder: Path, tmp_path: Path) -> Iterator[tuple[SQLiteCache, Events]]:
    cache = SQLiteCache(folder, tmp_path / "cache.db", now=fixed_now)
    cache.refresh()
    events = Events()
    watcher = cache.watch(events.on_change, on_error=events.on_error, settings=FAST)
    yield cache, events
    cache.close()
    assert not watcher.running


def tasks(cache: SQLiteCache, key: str) -> list[str]:
    return [p.task for p in cache.phases(key)]


def versions(cache: SQLiteCache, key: str) -> set[str]:
    return {p.template for p in cache.phases(key)}


def test_write_in_place(watched: tuple[SQLiteCache, Events], folder: Path) -> None:
    cache, events = watched
    write(folder, "a.toml", workflow("a", "v2"))
    assert events.wait_for(lambda: versions(cache, "a.toml") == {"v2"})
    assert ["a.toml"] in events.batches


@pytest.mark.parametrize("editor", ["rename-over", "vim", "jetbrains"])
def test_atomic_saves(watched: tuple[SQLiteCache, Events], folder: Path, editor: str) -> None:
    cache, events = watched
    target = folder / "a.toml"
    if editor == "rename-over":  # VS Code and most libraries: write a temp file, rename over
        write(folder, ".a.toml.tmp.1234", workflow("a", "v2"))
        os.replace(folder / ".a.toml.tmp.1234", target)
    elif editor == "vim":  # probe file 4913, backup a.toml~, write a new a.toml
        write(folder, "4913", "")
        (folder / "4913").unlink()
        os.rename(target, folder / "a.toml~")
        write(folder, "a.toml", workflow("a", "v2"))
        (folder / "a.toml~").unlink()
    else:  # JetBrains "safe write"
        write(folder, "a.toml___jb_tmp___", workflow("a", "v2"))
        os.rename(target, folder / "a.toml___jb_old___")
        os.rename(folder / "a.toml___jb_tmp___", target)
        (folder / "a.toml___jb_old___").unlink()
    assert events.wait_for(lambda: versions(cache, "a.toml") == {"v2"})
    assert [f.file_path for f in cache.workflow_files()] == ["a.toml", "sub/b.toml"]
    assert not any(key.startswith("-a.toml") for key in events.keys_seen())


def test_delete_then_create(watched: tuple[SQLiteCache, Events], folder: Path) -> None:
    cache, events = watched
    (folder / "a.toml").unlink()
    assert events.wait_for(lambda: tasks(cache, "a.toml") == [])
    write(folder, "a.toml", workflow("a", "v3"))
    assert events.wait_for(lambda: versions(cache, "a.toml") == {"v3"})


def test_create_in_a_new_sub_folder(watched: tuple[SQLiteCache, Events], folder: Path) -> None:
    cache, events = watched
    write(folder, "new/deeper/c.toml", workflow("c"))
    assert events.wait_for(lambda: tasks(cache, "new/deeper/c.toml") == ["c", "c-child"])


def test_move_a_file_in_from_outside(
    watched: tuple[SQLiteCache, Events], folder: Path, tmp_path: Path
) -> None:
    cache, events = watched
    outside = write(tmp_path / "elsewhere", "d.toml", workflow("d"))
    os.rename(outside, folder / "sub" / "d.toml")
    assert events.wait_for(lambda: tasks(cache, "sub/d.toml") == ["d", "d-child"])


def test_rename_a_file(watched: tuple[SQLiteCache, Events], folder: Path) -> None:
    cache, events = watched
    os.rename(folder / "a.toml", folder / "renamed.toml")
    assert events.wait_for(
        lambda: [f.file_path for f in cache.workflow_files()] == ["renamed.toml", "sub/b.toml"]
    )
    assert {"-a.toml", "renamed.toml"} <= events.keys_seen()
    assert tasks(cache, "renamed.toml") == ["a", "a-child"]


def test_delete_a_whole_sub_folder(watched: tuple[SQLiteCache, Events], folder: Path) -> None:
    cache, events = watched
    write(folder, "sub/deeper/e.toml", workflow("e"))
    assert events.wait_for(lambda: tasks(cache, "sub/deeper/e.toml") == ["e", "e-child"])
    shutil.rmtree(folder / "sub")
    assert events.wait_for(lambda: [f.file_path for f in cache.workflow_files()] == ["a.toml"])


def test_move_sub_folders_out_and_in(
    watched: tuple[SQLiteCache, Events], folder: Path, tmp_path: Path
) -> None:
    cache, events = watched
    os.rename(folder / "sub", tmp_path / "parked")
    assert events.wait_for(lambda: [f.file_path for f in cache.workflow_files()] == ["a.toml"])
    os.rename(tmp_path / "parked", folder / "back")
    assert events.wait_for(lambda: tasks(cache, "back/b.toml") == ["b", "b-child"])


def test_burst_of_200_files(watched: tuple[SQLiteCache, Events], folder: Path) -> None:
    cache, events = watched
    for number in range(200):
        write(folder, f"burst/f{number:03d}.toml", workflow(f"t{number}"))
    assert events.wait_for(lambda: len(cache.workflow_files()) == 202)
    assert len(cache.phases()) == 404


def test_truncated_mid_save_keeps_last_good_phases(
    watched: tuple[SQLiteCache, Events], folder: Path
) -> None:
    cache, events = watched
    seen: list[list[str]] = []
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            seen.append(tasks(cache, "a.toml"))

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        with open(folder / "a.toml", "w") as handle:  # truncated to empty, visible on disk
            handle.flush()
            assert events.wait_for(lambda: any("empty file" in str(e) for e in events.errors))
            handle.write(workflow("a", "v2")[:40])  # half-written: not TOML yet
            handle.flush()
            assert events.wait_for(lambda: any("TOML syntax" in str(e) for e in events.errors))
            handle.write(workflow("a", "v2")[40:])
        assert events.wait_for(lambda: versions(cache, "a.toml") == {"v2"})
    finally:
        stop.set()
        reader.join()
    assert seen and all(found == ["a", "a-child"] for found in seen)
    assert cache.workflow_files()[0].error == ""


def test_invalid_toml_then_fixed(watched: tuple[SQLiteCache, Events], folder: Path) -> None:
    cache, events = watched
    write(folder, "a.toml", '[[Phase]]\ntask = "a"\nretry = "three"\n')
    assert events.wait_for(lambda: cache.workflow_files()[0].error != "")
    assert "a.toml: line 3: phase 1: retry must be an integer" in cache.workflow_files()[0].error
    assert versions(cache, "a.toml") == {"v1"}
    write(folder, "a.toml", workflow("a", "v2"))
    assert events.wait_for(lambda: cache.workflow_files()[0].error == "")
    assert versions(cache, "a.toml") == {"v2"}


@pytest.mark.parametrize("kind", ["binary", "too big", "symlink loop"])
def test_bad_files_are_reported_and_the_watch_goes_on(
    watched: tuple[SQLiteCache, Events], folder: Path, kind: str
) -> None:
    cache, events = watched
    if kind == "binary":
        (folder / "bad.toml").write_bytes(bytes(range(256)) * 4)
        expected = "bad.toml: line 2: not UTF-8 text (byte 0x80)"
    elif kind == "too big":
        (folder / "bad.toml").write_bytes(b"# padding\n" * 110_000)
        expected = "bad.toml: file is 1100000 bytes, over the limit of 1048576"
    else:
        (folder / "bad.toml").symlink_to(folder / "bad.toml")
        expected = "bad.toml: cannot read: "
    assert events.wait_for(lambda: any(expected in str(e) for e in events.errors))
    write(folder, "a.toml", workflow("a", "v2"))
    assert events.wait_for(lambda: versions(cache, "a.toml") == {"v2"})


def test_watched_folder_deleted_and_created_again(
    watched: tuple[SQLiteCache, Events], folder: Path
) -> None:
    cache, events = watched
    shutil.rmtree(folder)
    assert events.wait_for(lambda: any(isinstance(e, FileNotFoundError) for e in events.errors))
    assert tasks(cache, "a.toml") == ["a", "a-child"]  # last good phases kept
    write(folder, "a.toml", workflow("a", "v2"))
    assert events.wait_for(lambda: versions(cache, "a.toml") == {"v2"})
    assert events.wait_for(lambda: [f.file_path for f in cache.workflow_files()] == ["a.toml"])
    write(folder, "z.toml", workflow("z"))  # the new folder is really watched
    assert events.wait_for(lambda: tasks(cache, "z.toml") == ["z", "z-child"])


def test_a_failing_on_change_does_not_end_the_watch(folder: Path, tmp_path: Path) -> None:
    cache = SQLiteCache(folder, tmp_path / "cache.db", now=fixed_now)
    cache.refresh()
    events = Events()

    def explode(keys: list[str]) -> None:
        events.on_change(keys)
        raise RuntimeError("callback bug")

    watcher = cache.watch(explode, on_error=events.on_error, settings=FAST)
    write(folder, "a.toml", workflow("a", "v2"))
    assert events.wait_for(lambda: any("callback bug" in str(e) for e in events.errors))
    write(folder, "a.toml", workflow("a", "v3"))
    assert events.wait_for(lambda: versions(cache, "a.toml") == {"v3"})
    assert watcher.running
    cache.close()


def test_close_stops_the_thread_promptly(folder: Path, tmp_path: Path) -> None:
    cache = SQLiteCache(folder, tmp_path / "cache.db", now=fixed_now)
    watcher = cache.watch(lambda keys: None, settings=WatchSettings(wake_ms=5000))
    assert watcher.running
    started = time.monotonic()
    cache.close()
    assert time.monotonic() - started < 2.0
    assert not watcher.running
    assert not [t for t in threading.enumerate() if t.name == "flowlord-watch"]


def test_safety_net_refresh_catches_what_events_miss(folder: Path, tmp_path: Path) -> None:
    """With polling slowed to a minute, only the safety net can see the new file in time."""
    cache = SQLiteCache(folder, tmp_path / "cache.db", now=fixed_now)
    cache.refresh()
    events = Events()
    settings = WatchSettings(
        force_polling=True, poll_delay_ms=60_000, wake_ms=100, full_refresh_every=0.3
    )
    cache.watch(events.on_change, on_error=events.on_error, settings=settings)
    write(folder, "late.toml", workflow("late"))
    assert events.wait_for(lambda: tasks(cache, "late.toml") == ["late", "late-child"])
    cache.close()


def test_single_file_mode(folder: Path, tmp_path: Path) -> None:
    cache = SQLiteCache(folder / "a.toml", tmp_path / "cache.db", now=fixed_now)
    cache.refresh()
    events = Events()
    cache.watch(events.on_change, on_error=events.on_error, settings=FAST)
    write(folder, "sub/other.toml", workflow("other", "v2"))
    write(folder, "a.toml", workflow("a", "v2"))
    assert events.wait_for(lambda: versions(cache, "a.toml") == {"v2"})
    assert [f.file_path for f in cache.workflow_files()] == ["a.toml"]
    assert events.keys_seen() == {"a.toml"}
    cache.close()


def test_memory_cache_watches_too(folder: Path) -> None:
    cache = MemoryCache(folder, now=fixed_now)
    cache.refresh()
    events = Events()
    cache.watch(events.on_change, on_error=events.on_error, settings=FAST)
    write(folder, "a.toml", workflow("b2"))
    assert events.wait_for(lambda: cache.search("b2")[0] == "a.toml")
    cache.close()
