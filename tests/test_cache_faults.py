"""Faults the cache must survive: poison files and folders that cannot be listed.

A poison file fails alone (a load error, last good phases kept, the same bytes never parsed
again, both caches agreeing); a folder that cannot be listed removes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import apsw
import pytest

from cache import Cache, RefreshError, SQLiteCache
from cache.loader import Loader
from cache.memory import MemoryStore
from cache.source import WorkflowSource
from tests.conftest import CacheFactory, fixed_now, write
from tests.test_watch import FAST, Events
from workflow import Task, Workflow, parse_workflow

ROOT = Path(__file__).resolve().parent.parent
GOOD = '[[Phase]]\ntask = "{name}"\nrule = "cron=@daily"\n'
POISON = {
    "deep_array": "[[Phase]]\ntask = " + "[" * 600 + "]" * 600 + "\n",
    "deep_table": "[[Phase]]\ntask = 'x'\nrule = 'cron=@daily'\nx = "
    + "{a=" * 600
    + "1"
    + "}" * 600,
    "huge_int": '[[Phase]]\ntask = "x"\nrule = "cron=@daily"\nretry = 99999999999999999999\n',
}


def good(name: str) -> str:
    return GOOD.format(name=name)


def topic_in(cache: Cache, key: str, topic: str) -> str:
    """The task of `topic` in file `key` through the lookup both caches have ("" if none)."""
    return cache.get(Task(type=topic, meta=f"workflow={key}")).task


@pytest.mark.parametrize("poison", sorted(POISON))
def test_a_poison_file_fails_alone_in_both_caches(
    make_cache: CacheFactory, tmp_path: Path, poison: str
) -> None:
    root = tmp_path / "wf"
    write(root, "a.toml", good("a"))
    write(root, "poison.toml", good("p"))
    cache = make_cache(root)
    cache.refresh()
    write(root, "poison.toml", POISON[poison])
    write(root, "b.toml", good("b"))  # a good file in the same refresh still loads
    with pytest.raises(RefreshError) as caught:
        cache.refresh()
    assert list(caught.value.errors) == ["poison.toml"]
    assert caught.value.changed == ["b.toml"]
    message = caught.value.errors["poison.toml"]
    assert message.startswith("poison.toml") and "internal error" not in message
    assert topic_in(cache, "poison.toml", "p") == "p"  # the last good phases are kept
    assert topic_in(cache, "b.toml", "b") == "b"
    assert cache.refresh() == []  # the same bad bytes are not parsed (nor reported) again
    assert cache.last_refresh.parsed == 0  # type: ignore[attr-defined]


def test_an_unexpected_parser_failure_fails_that_file_alone(tmp_path: Path) -> None:
    """The loader's edge: whatever a parser raises, that file fails and the others load.

    A parser that breaks on one file stands for any bug in parsing or validation."""
    root = tmp_path / "wf"
    for name in ("a", "z", "b"):
        write(root, f"{name}.toml", good(name))

    def flaky(data: bytes, key: str) -> Workflow:
        if key == "z.toml":
            raise OverflowError("a parser bug")
        return parse_workflow(data, key)

    store = MemoryStore()
    loader = Loader(WorkflowSource(root), store, now=fixed_now, parse=flaky)
    outcome = loader.refresh()
    assert outcome.changed == ["a.toml", "b.toml"]
    assert outcome.errors == {
        "z.toml": "z.toml: cannot load: internal error: OverflowError: a parser bug"
    }
    assert store.files["z.toml"].error_hash  # the same bytes are not parsed again
    assert loader.refresh().errors == {}


def test_a_status_from_an_older_validator_is_computed_again(tmp_path: Path) -> None:
    root = tmp_path / "wf"
    write(root, "a.toml", '[[Phase]]\ntask = "a b"\nrule = "cron=@daily"\n')
    db = tmp_path / "c.db"
    cache = SQLiteCache(root, db, now=fixed_now)
    cache.refresh()
    cache.close()
    # What a database written by the previous flowlord holds: version 0, no topic check.
    with apsw.Connection(str(db)) as connection:
        connection.execute("UPDATE workflow_files SET validation = 0")
        connection.execute("UPDATE workflow_phases SET status = ''")
    cache = SQLiteCache(root, db, now=fixed_now)
    assert cache.refresh() == ["a.toml"]
    assert [p.status for p in cache.phases()] == ["invalid topic: a b"]
    assert cache.refresh() == [] and cache.last_refresh.parsed == 0
    cache.close()


def test_the_folder_replaced_by_a_file_removes_nothing(
    make_cache: CacheFactory, tmp_path: Path
) -> None:
    root = tmp_path / "wf"
    write(root, "a.toml", good("a"))
    cache = make_cache(root)
    cache.refresh()
    shutil.rmtree(root)
    root.write_text("not a folder")
    with pytest.raises(RefreshError) as caught:
        cache.refresh()
    assert list(caught.value.errors) == ["."]
    assert "cannot list the folder" in caught.value.errors["."]
    assert caught.value.changed == []
    assert topic_in(cache, "a.toml", "a") == "a"


def test_rm_rf_of_a_flat_watched_folder_keeps_every_phase(tmp_path: Path) -> None:
    root = tmp_path / "wf"
    names = [f"f{n}" for n in range(30)]
    for name in names:
        write(root, f"{name}.toml", good(name))
    cache = SQLiteCache(root, tmp_path / "c.db", now=fixed_now)
    cache.refresh()
    events = Events()
    cache.watch(events.on_change, on_error=events.on_error, settings=FAST)
    try:
        shutil.rmtree(root)
        assert events.wait_for(lambda: any("gone" in str(e) for e in events.errors))
        assert sorted(p.task for p in cache.phases()) == sorted(names)
        assert not any(key.startswith("-") for key in events.keys_seen())
        write(root, "f0.toml", good("f0"))  # back: a folder listed again decides removals
        assert events.wait_for(lambda: [p.task for p in cache.phases()] == ["f0"])
    finally:
        cache.close()


def test_a_file_event_in_a_folder_that_cannot_be_listed_removes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "wf"
    write(root, "sub/a.toml", good("a"))
    cache = SQLiteCache(root, tmp_path / "c.db", now=fixed_now)
    cache.refresh()
    shutil.rmtree(root)
    with pytest.raises(RefreshError) as caught:  # no enclosing folder lists: nothing known
        cache.refresh_files(["sub/a.toml"])
    assert "cannot list the folder" in caught.value.errors["sub/a.toml"]
    assert [p.task for p in cache.phases()] == ["a"]
    root.mkdir()
    (root / "sub").write_text("now a file")  # the root lists: sub/a.toml cannot exist
    assert cache.refresh_files(["sub/a.toml"]) == ["-sub/a.toml"]
    cache.close()


LISTING_FAULTS = """
import os, resource, sys
from cache import Cache, RefreshError, SQLiteCache
from cache.loader import Loader
from cache.memory import MemoryStore
from cache.source import WorkflowSource
root, db, fault = sys.argv[1], sys.argv[2], sys.argv[3]
cache = SQLiteCache(root, db)
cache.refresh()
if fault == "emfile":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
else:
    os.setgid(65534)
    os.setuid(65534)
try:
    cache.refresh()
    print("refresh: no error")
except RefreshError as err:
    print("refresh:", sorted(err.errors.items()), "changed", err.changed)
try:
    cache.refresh_files(["sub/b.toml"])
    print("refresh_files: no error")
except RefreshError as err:
    print("refresh_files:", sorted(err.errors.items()), "changed", err.changed)
if fault == "emfile":
    for fd in held:
        os.close(fd)
print("phases:", sorted(p.task for p in cache.phases()))
"""


@pytest.mark.parametrize("fault", ["emfile", "permission"])
def test_a_folder_that_cannot_be_listed_removes_nothing(tmp_path: Path, fault: str) -> None:
    """Real faults in a real process: too many open files, and a subfolder with mode 000
    (as root, the process drops to `nobody` first, since root lists any folder)."""
    if fault == "permission" and os.geteuid() != 0:
        pytest.skip("drops privileges to nobody, which needs root")
    # pytest's tmp_path sits in a folder only root may enter: use one anybody may.
    base = Path(tempfile.mkdtemp(prefix="flowlord-faults-"))
    try:
        root = base / "wf"
        write(root, "a.toml", good("a"))
        write(root, "sub/b.toml", good("b"))
        db = base / "c.db"
        for path in (base, root, root / "sub"):
            os.chmod(path, 0o777)
        script = textwrap.dedent(LISTING_FAULTS)
        if fault == "permission":  # made unlistable after the first refresh
            script = script.replace(
                "os.setgid(65534)", "os.chmod(root + '/sub', 0); os.setgid(65534)"
            )
        done = subprocess.run(
            [sys.executable, "-c", script, str(root), str(db), fault],
            capture_output=True, text=True, timeout=30,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    finally:
        os.chmod(base / "wf" / "sub", 0o755)
        shutil.rmtree(base)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    assert "cannot list the folder" in lines["refresh"], done.stdout
    assert "cannot" in lines["refresh_files"], done.stdout  # listing, or reading the file
    assert lines["phases"].strip() == "['a', 'b']", done.stdout
