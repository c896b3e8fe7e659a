"""Readers in other threads during reloads see a file's old version or its new one, never a mix."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cache import Cache, MemoryCache, SQLiteCache
from tests.conftest import fixed_now, write
from workflow import Task

PHASES = 10
REWRITES = 150
READERS = 3


def version_text(version: int) -> str:
    """A chain of phases, all stamped with one version; odd versions add one more child."""
    lines = ['[[Phase]]\ntask = "root"\nrule = "cron=@daily"\n', f'template = "v{version}"\n']
    extra = PHASES + version % 2
    for step in range(1, extra):
        lines.append(f'[[Phase]]\ntask = "s{step}"\ndependsOn = "root"\ntemplate = "v{version}"\n')
    return "".join(lines)


def make(kind: str, folder: Path, tmp_path: Path) -> Cache:
    if kind == "memory":
        return MemoryCache(folder, now=fixed_now)
    return SQLiteCache(folder, tmp_path / "cache.db", now=fixed_now)


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_readers_never_see_a_mix(kind: str, tmp_path: Path) -> None:
    folder = tmp_path / "wf"
    write(folder, "f.toml", version_text(0))
    write(folder, "other.toml", version_text(0).replace("root", "other"))
    cache = make(kind, folder, tmp_path)
    cache.refresh()
    root = Task(type="root", meta="workflow=f.toml")
    mixes: list[str] = []
    reads = [0] * READERS
    done = threading.Event()

    def read(number: int) -> None:
        while not done.is_set():
            children = cache.children(root)
            stamps = {child.template for child in children}
            expected = PHASES - 1 + int(next(iter(stamps))[1:]) % 2 if stamps else -1
            if len(stamps) != 1 or len(children) != expected:
                mixes.append(f"{len(children)} children stamped {sorted(stamps)}")
            reads[number] += 1
            if reads[number] % 20 == 0:  # yield the GIL now and then, or readers starve the writer
                time.sleep(0)

    readers = [threading.Thread(target=read, args=(n,)) for n in range(READERS)]
    for reader in readers:
        reader.start()
    try:
        for version in range(1, REWRITES + 1):
            (folder / "f.toml").write_text(version_text(version))
            assert cache.refresh_files(["f.toml"]) == ["f.toml"]
    finally:
        done.set()
        for reader in readers:
            reader.join()
        cache.close()
    assert mixes == []
    assert min(reads) > 0
