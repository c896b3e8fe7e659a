"""The Cache contract: the same tests, unchanged, against MemoryCache and SQLiteCache."""

from __future__ import annotations

from pathlib import Path

import pytest

from cache import RefreshError
from tests.conftest import CacheFactory, write
from workflow import Phase, PhaseRecord, Task

F1 = """
    [[Phase]]
    task = "task1"
    rule = "cron=0 0 * * *"

    [[Phase]]
    task = "task2"
    dependsOn = "task1"
    rule = "job=j2"

    [[Phase]]
    task = "task3:j3"
    dependsOn = "task2:j2"
    retry = 3
    template = "?day={yyyy}-{mm}-{dd}"

    [[Phase]]
    task = "task4"
    dependsOn = "task2"

    [[Phase]]
    task = "task2:other"
    dependsOn = "task1"
"""
F2 = """
    [[phase]]
    Task = "task1"
    RULE = "cron=5 0 * * *&job=second"

    [[phase]]
    TASK = "task5"
    depends_on = "task1:second"
"""
F3 = """
    [[Phase]]
    task = "task1:nested"
    rule = "files=s3://bucket/*.json"

    [[Phase]]
    task = "task6"
    DependsOn = "task1"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "workflows"
    write(root, "f1.toml", F1)
    write(root, "f2.toml", F2)
    write(root, "sub/f3.toml", F3)
    return root


def task(type_: str, meta: str = "", job: str = "") -> Task:
    return Task(type=type_, job=job, meta=meta)


def test_refresh_loads_every_file_recursively(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    assert cache.is_dir()
    assert sorted(cache.refresh()) == ["f1.toml", "f2.toml", "sub/f3.toml"]
    assert cache.refresh() == []


def test_job_from_task_or_rule(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    _, phase = cache.search("task2", "j2")
    assert (phase.task, phase.topic, phase.job) == ("task2:j2", "task2", "j2")
    _, phase = cache.search("task3")
    assert (phase.task, phase.topic, phase.job) == ("task3:j3", "task3", "j3")
    _, phase = cache.search("task4")
    assert (phase.topic, phase.job) == ("task4", "")


def test_search_first_by_file_then_order(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    key, phase = cache.search("task1")
    assert (key, phase.task, phase.rule) == ("f1.toml", "task1", "cron=0 0 * * *")
    key, phase = cache.search("task1", "second")
    assert (key, phase.task) == ("f2.toml", "task1:second")
    key, phase = cache.search("task1", "nested")
    assert (key, phase.task) == ("sub/f3.toml", "task1:nested")
    key, phase = cache.search("task2", "other")
    assert (key, phase.task) == ("f1.toml", "task2:other")


def test_search_miss_is_empty(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    assert cache.search("nope") == ("", Phase())
    key, phase = cache.search("task1", "nojob")
    assert key == "" and phase.is_empty()


def test_get_by_workflow(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    record = cache.get(task("task1", "workflow=f2.toml"))
    assert isinstance(record, PhaseRecord)
    assert (record.file_path, record.task, record.status) == ("f2.toml", "task1:second", "")
    record = cache.get(task("task3", "workflow=f1.toml&job=j3"))
    assert (record.task, record.retry, record.template) == ("task3:j3", 3, "?day={yyyy}-{mm}-{dd}")


def test_get_job_from_task_then_meta(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    assert cache.get(task("task2", "workflow=f1.toml", job="other")).task == "task2:other"
    assert cache.get(task("task2", "workflow=f1.toml&job=other")).task == "task2:other"
    assert cache.get(task("task2", "workflow=f1.toml&job=j2", job="other")).task == "task2:other"
    assert cache.get(task("task2", "workflow=f1.toml")).task == "task2:j2"


def test_get_star_searches_every_file(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    record = cache.get(task("task6", "workflow=*"))
    assert (record.file_path, record.task) == ("sub/f3.toml", "task6")
    record = cache.get(task("task1", "workflow=*&job=nested"))
    assert (record.file_path, record.task) == ("sub/f3.toml", "task1:nested")


@pytest.mark.parametrize(
    "meta", ["", "workflow=missing.toml", "workflow=f1.toml&job=nojob", "workflow=f2.toml"]
)
def test_get_miss_is_empty_record(make_cache: CacheFactory, folder: Path, meta: str) -> None:
    cache = make_cache(folder)
    cache.refresh()
    record = cache.get(task("task4" if meta.endswith("f2.toml") else "task1", meta))
    assert record.is_empty()
    assert record.status == "not found"


def test_children_of_topic_and_job(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    kids = cache.children(task("task1", "workflow=f1.toml"))
    assert [k.task for k in kids] == ["task2:j2", "task2:other"]
    kids = cache.children(task("task2", "workflow=f1.toml&job=j2"))
    assert [k.task for k in kids] == ["task3:j3", "task4"]
    kids = cache.children(task("task2", "workflow=f1.toml", job="other"))
    assert [k.task for k in kids] == ["task4"]
    kids = cache.children(task("task1", "workflow=f2.toml&job=second"))
    assert [k.task for k in kids] == ["task5"]
    kids = cache.children(task("task1", "workflow=sub/f3.toml&job=nested"))
    assert [k.task for k in kids] == ["task6"]


@pytest.mark.parametrize("meta", ["", "workflow=*", "workflow=missing.toml"])
def test_children_need_a_known_workflow(make_cache: CacheFactory, folder: Path, meta: str) -> None:
    cache = make_cache(folder)
    cache.refresh()
    assert cache.children(task("task1", meta)) == []
    assert cache.children(task("", "workflow=f1.toml")) == []


def test_single_file_mode_keys_by_name(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder / "sub" / "f3.toml")
    assert not cache.is_dir()
    assert cache.refresh() == ["f3.toml"]
    assert cache.get(task("task6", "workflow=f3.toml")).task == "task6"


def test_removed_and_changed_files_reported(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    (folder / "f2.toml").unlink()
    write(folder, "sub/f3.toml", F3.replace("task6", "task7"))
    write(folder, "sub/deeper/f4.toml", '[[Phase]]\ntask = "t"\nrule = "cron=@hourly"\n')
    assert sorted(cache.refresh()) == ["-f2.toml", "sub/deeper/f4.toml", "sub/f3.toml"]
    assert cache.get(task("task1", "workflow=f2.toml")).is_empty()
    assert cache.search("task6") == ("", Phase())
    assert cache.search("task7")[0] == "sub/f3.toml"


def test_only_toml_and_no_hidden_or_temp_files(make_cache: CacheFactory, tmp_path: Path) -> None:
    root = tmp_path / "wf"
    good = '[[Phase]]\ntask = "t"\nrule = "cron=@daily"\n'
    for key in ["a.toml", ".hidden.toml", ".git/b.toml", "notes.txt", "a.toml~", ".#a.toml",
                ".a.toml.swp", "4913", "x.toml.bak", "sub/.c.toml", "sub/c.toml"]:  # fmt: skip
        write(root, key, good)
    cache = make_cache(root)
    assert sorted(cache.refresh()) == ["a.toml", "sub/c.toml"]


def test_broken_file_keeps_last_good_phases(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    write(folder, "f2.toml", "[[phase]\ntask = ")
    write(folder, "sub/f3.toml", F3.replace("task6", "task8"))
    with pytest.raises(RefreshError) as raised:
        cache.refresh()
    assert list(raised.value.errors) == ["f2.toml"]
    assert "f2.toml: line 1" in raised.value.errors["f2.toml"]
    assert raised.value.changed == ["sub/f3.toml"]
    assert cache.get(task("task1", "workflow=f2.toml")).task == "task1:second"
    assert cache.search("task8")[0] == "sub/f3.toml"
    assert cache.refresh() == []  # the same broken bytes are not reported again


def test_fixing_a_broken_file_loads_it(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    write(folder, "f2.toml", "")
    with pytest.raises(RefreshError, match="empty file"):
        cache.refresh()
    write(folder, "f2.toml", F2.replace("task5", "task9"))
    assert cache.refresh() == ["f2.toml"]
    assert cache.search("task9")[0] == "f2.toml"


def test_missing_workflow_path(make_cache: CacheFactory, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        make_cache(tmp_path / "nowhere")


def test_refresh_files_loads_only_the_named_keys(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    write(folder, "f1.toml", F1.replace("task4", "task40"))
    write(folder, "sub/f3.toml", F3.replace("task6", "task60"))
    (folder / "f2.toml").unlink()
    assert cache.refresh_files(["sub/f3.toml", "f2.toml"]) == ["sub/f3.toml", "-f2.toml"]
    assert cache.search("task60")[0] == "sub/f3.toml"
    assert cache.search("task40") == ("", Phase())  # not named, not reloaded yet
    assert cache.refresh() == ["f1.toml"]


@pytest.mark.parametrize(
    "key", ["../outside.toml", "/etc/passwd", "sub/../f1.toml", ".hidden.toml", "f1.txt", ""]
)
def test_refresh_files_ignores_keys_outside_the_folder(
    make_cache: CacheFactory, folder: Path, key: str
) -> None:
    write(folder.parent, "outside.toml", '[[Phase]]\ntask = "evil"\nrule = "cron=@daily"\n')
    write(folder, ".hidden.toml", '[[Phase]]\ntask = "evil"\nrule = "cron=@daily"\n')
    cache = make_cache(folder)
    cache.refresh()
    assert cache.refresh_files([key]) == []
    assert cache.search("evil") == ("", Phase())


def test_refresh_files_reports_a_broken_file(make_cache: CacheFactory, folder: Path) -> None:
    cache = make_cache(folder)
    cache.refresh()
    write(folder, "f1.toml", "[[Phase]]\ntask = 1\n")
    with pytest.raises(RefreshError) as raised:
        cache.refresh_files(["f1.toml"])
    assert raised.value.errors == {
        "f1.toml": "f1.toml: line 2: phase 1: task must be a string, got integer 1"
    }
    assert cache.search("task4")[0] == "f1.toml"
