"""Batch rules: one child phase expanded into tasks by time range (`for`/`by`) and meta."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest

from workflow.batch import (
    DEFAULT_MAX_TASKS,
    BatchError,
    BatchItem,
    expand,
    parse_meta_file,
)
from workflow.query import parse_query

WHEN = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
EST = timezone(timedelta(hours=-5))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def times(items: list[BatchItem]) -> list[datetime]:
    return [item.when for item in items]


@pytest.mark.parametrize(
    "rule",
    [{}, {"cron": "@daily"}, {"job": "x", "offset": "-1h", "retry_delay": "5m"}],
)
def test_no_batch_keys_gives_when_untouched(rule: dict[str, str]) -> None:
    when = utc(2026, 11, 21, 12, 34, 56, 789)
    assert expand(rule, when) == [BatchItem(when, {})]


@pytest.mark.parametrize(
    ("query", "when", "expected"),
    [
        (
            "for=-72h&by=day",
            WHEN,
            [utc(2026, 11, 18), utc(2026, 11, 19), utc(2026, 11, 20), utc(2026, 11, 21)],
        ),
        (
            "for=-72h",
            WHEN,
            [utc(2026, 11, 18), utc(2026, 11, 19), utc(2026, 11, 20), utc(2026, 11, 21)],
        ),
        ("for=48h&by=day", WHEN, [utc(2026, 11, 21), utc(2026, 11, 22), utc(2026, 11, 23)]),
        (
            "for=-72h&by=day",
            utc(2026, 1, 2, 6),
            [utc(2025, 12, 30), utc(2025, 12, 31), utc(2026, 1, 1), utc(2026, 1, 2)],
        ),
        (
            "for=-48h&by=day",
            utc(2026, 3, 1, 0, 30),
            [utc(2026, 2, 27), utc(2026, 2, 28), utc(2026, 3, 1)],
        ),
        ("for=-24h&by=day", utc(2026, 11, 21), [utc(2026, 11, 20), utc(2026, 11, 21)]),
        ("for=-23h59m&by=day", utc(2026, 11, 21, 23, 59), [utc(2026, 11, 21)]),
        (
            "for=-3h&by=hour",
            utc(2026, 1, 1, 1, 30),
            [utc(2025, 12, 31, 22), utc(2025, 12, 31, 23), utc(2026, 1, 1, 0), utc(2026, 1, 1, 1)],
        ),
        (
            "for=-2h&by=hour",
            utc(2026, 11, 21, 12, 30, 15, 5),
            [utc(2026, 11, 21, 10), utc(2026, 11, 21, 11), utc(2026, 11, 21, 12)],
        ),
        (
            "for=-90m&by=hour",
            WHEN,
            [utc(2026, 11, 21, 10), utc(2026, 11, 21, 11), utc(2026, 11, 21, 12)],
        ),
        ("for=2h&by=hour", WHEN, [utc(2026, 11, 21, h) for h in (12, 13, 14)]),
        (
            "for=-1440h&by=month",
            utc(2026, 1, 15, 10),
            [utc(2025, 11, 1), utc(2025, 12, 1), utc(2026, 1, 1)],
        ),
        ("for=-744h&by=month", utc(2026, 3, 31, 23), [utc(2026, 2, 1), utc(2026, 3, 1)]),
        (
            "for=720h&by=month",
            utc(2026, 1, 31, 12),
            [utc(2026, 1, 1), utc(2026, 2, 1), utc(2026, 3, 1)],
        ),
        ("for=24h&by=month", utc(2024, 2, 29, 12), [utc(2024, 2, 1), utc(2024, 3, 1)]),
        ("for=-1h&by=month", utc(2026, 12, 1, 0, 30), [utc(2026, 11, 1), utc(2026, 12, 1)]),
        ("for=0s&by=hour", utc(2026, 11, 21, 12, 34, 56, 7), [utc(2026, 11, 21, 12)]),
        ("for=0s&by=day", utc(2026, 11, 21, 12, 34, 56, 7), [utc(2026, 11, 21)]),
        ("for=0s", utc(2026, 11, 21, 12, 34), [utc(2026, 11, 21)]),
        ("for=0&by=month", utc(2026, 12, 31, 23, 59), [utc(2026, 12, 1)]),
    ],
)
def test_time_range(query: str, when: datetime, expected: list[datetime]) -> None:
    items = expand(parse_query(query), when)
    assert times(items) == expected
    assert all(item.meta == {} for item in items)


def test_time_range_truncates_and_steps_in_whens_tzinfo() -> None:
    when = datetime(2026, 11, 21, 22, 0, tzinfo=EST)
    items = expand({"for": "-24h", "by": "day"}, when)
    assert times(items) == [datetime(2026, 11, 20, tzinfo=EST), datetime(2026, 11, 21, tzinfo=EST)]
    assert all(item.when.tzinfo is EST for item in items)


def test_long_hour_range_steps_every_hour() -> None:
    items = expand({"for": "-9999h", "by": "hour"}, WHEN)
    assert len(items) == DEFAULT_MAX_TASKS
    assert items[0].when == WHEN - timedelta(hours=9999)
    assert all(b.when - a.when == timedelta(hours=1) for a, b in pairwise(items))


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ("region:us,eu,apac", [{"region": "us"}, {"region": "eu"}, {"region": "apac"}]),
        ("region:us", [{"region": "us"}]),
        (
            "region:us,eu|tier:1,2",
            [{"region": "us", "tier": "1"}, {"region": "eu", "tier": "2"}],
        ),
        (
            "a:1,2|b:x,y|c:p,q",
            [{"a": "1", "b": "x", "c": "p"}, {"a": "2", "b": "y", "c": "q"}],
        ),
        ("url:s3://b/k,gs://b/k", [{"url": "s3://b/k"}, {"url": "gs://b/k"}]),
    ],
)
def test_meta_lists_are_zipped_by_position(meta: str, expected: list[dict[str, str]]) -> None:
    assert expand({"meta": meta}, WHEN) == [BatchItem(WHEN, m) for m in expected]


def test_meta_from_a_parsed_query() -> None:
    items = expand(parse_query("meta=region:us,eu|tier:1,2"), WHEN)
    assert [item.meta for item in items] == [
        {"region": "us", "tier": "1"},
        {"region": "eu", "tier": "2"},
    ]


@pytest.mark.parametrize(
    "rows",
    [
        [{"region": "us"}],
        [{"region": "us", "tier": "1"}, {"region": "eu", "tier": "2"}, {}],
    ],
)
def test_meta_file_rows_are_the_items(rows: list[dict[str, str]]) -> None:
    items = expand({"meta-file": "regions.csv"}, WHEN, meta_rows=rows)
    assert items == [BatchItem(WHEN, row) for row in rows]


def test_items_do_not_share_meta_dicts() -> None:
    rows = [{"region": "us"}]
    items = expand({"for": "-24h", "meta-file": "r.csv"}, WHEN, meta_rows=rows)
    items[0].meta["region"] = "changed"
    assert items[1].meta == {"region": "us"}
    assert rows == [{"region": "us"}]


@pytest.mark.parametrize(
    ("rule", "rows", "expected"),
    [
        (
            {"for": "-24h", "by": "day", "meta": "region:us,eu"},
            None,
            [
                (utc(2026, 11, 20), {"region": "us"}),
                (utc(2026, 11, 20), {"region": "eu"}),
                (utc(2026, 11, 21), {"region": "us"}),
                (utc(2026, 11, 21), {"region": "eu"}),
            ],
        ),
        (
            {"for": "1h", "by": "hour", "meta-file": "t.jsonl"},
            [{"t": "b"}, {"t": "a"}],
            [
                (utc(2026, 11, 21, 12), {"t": "b"}),
                (utc(2026, 11, 21, 12), {"t": "a"}),
                (utc(2026, 11, 21, 13), {"t": "b"}),
                (utc(2026, 11, 21, 13), {"t": "a"}),
            ],
        ),
    ],
)
def test_cross_product_is_ordered_by_time_then_meta(
    rule: dict[str, str],
    rows: list[dict[str, str]] | None,
    expected: list[tuple[datetime, dict[str, str]]],
) -> None:
    items = expand(rule, WHEN, meta_rows=rows)
    assert [(item.when, item.meta) for item in items] == expected


@pytest.mark.parametrize(
    ("rule", "rows", "key", "match"),
    [
        ({"by": "day"}, None, "by", "by=day: needs a range"),
        ({"for": "-72h", "by": "week"}, None, "by", "by=week: must be one of day, hour, month"),
        ({"for": "-72h", "by": ""}, None, "by", "by=: must be one of"),
        ({"for": "-72h", "by": "Day"}, None, "by", "by=Day"),
        ({"for": "72"}, None, "for", "for=72: not a duration"),
        ({"for": ""}, None, "for", "for=: not a duration"),
        ({"for": "-3d", "by": "day"}, None, "for", "for=-3d: not a duration"),
        ({"for": "23999976000h", "by": "hour"}, None, "for", "outside the years 1-9999"),
        ({"meta": ""}, None, "meta", "meta=: '' is not key:value"),
        ({"meta": "region"}, None, "meta", "meta=region: 'region' is not key:value"),
        ({"meta": ":us,eu"}, None, "meta", "is not key:value"),
        ({"meta": "region:"}, None, "meta", "key 'region' has an empty value"),
        ({"meta": "region:us,,eu"}, None, "meta", "key 'region' has an empty value"),
        ({"meta": "region:us,"}, None, "meta", "key 'region' has an empty value"),
        ({"meta": "region:us|"}, None, "meta", "'' is not key:value"),
        ({"meta": "region:us|region:eu"}, None, "meta", "key 'region' repeats"),
        (
            {"meta": "region:us,eu|tier:1"},
            None,
            "meta",
            r"meta=region:us,eu\|tier:1: lists differ in length \(region: 2, tier: 1\)",
        ),
        ({"meta-file": "r.csv"}, None, "meta-file", r"meta-file=r.csv: its rows were not read"),
        ({"meta-file": "r.csv"}, [], "meta-file", "meta-file=r.csv: has no rows"),
        (
            {"meta": "a:1", "meta-file": "r.csv"},
            [{"a": "1"}],
            "meta",
            "meta=a:1 and meta-file=r.csv: use only one",
        ),
    ],
)
def test_bad_rule_raises_batch_error_naming_the_key(
    rule: dict[str, str], rows: list[dict[str, str]] | None, key: str, match: str
) -> None:
    with pytest.raises(BatchError, match=match) as caught:
        expand(rule, WHEN, meta_rows=rows)
    assert caught.value.key == key
    assert f"{key}=" in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("when", "kwargs", "match"),
    [
        (datetime(2026, 11, 21, 12), {}, "when must be timezone-aware"),
        (WHEN, {"max_tasks": 0}, "max_tasks must be at least 1"),
        (WHEN, {"meta_rows": [{"a": "1"}]}, "meta_rows given, but the rule has no meta-file"),
    ],
)
def test_caller_mistakes_are_plain_value_errors(
    when: datetime, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        expand({}, when, **kwargs)  # type: ignore[arg-type]
    assert not isinstance(caught.value, BatchError)


@pytest.mark.parametrize(
    ("rule", "rows", "max_tasks", "key", "message"),
    [
        (
            {"for": "-20000h", "by": "hour"},
            None,
            10_000,
            "for",
            "for=-20000h by=hour makes 20001 tasks, over the limit of 10000",
        ),
        (
            {"for": "-10000h", "by": "hour"},
            None,
            DEFAULT_MAX_TASKS,
            "for",
            "for=-10000h by=hour makes 10001 tasks, over the limit of 10000",
        ),
        (
            {"for": "-72h", "meta": "region:us,eu,apac"},
            None,
            10,
            "for",
            "for=-72h by=day with meta=region:us,eu,apac makes 12 tasks, over the limit of 10",
        ),
        (
            {"meta": "a:1,2,3"},
            None,
            2,
            "meta",
            "meta=a:1,2,3 makes 3 tasks, over the limit of 2",
        ),
        (
            {"meta-file": "r.csv"},
            [{"a": "1"}] * 5,
            4,
            "meta-file",
            "meta-file=r.csv (5 rows) makes 5 tasks, over the limit of 4",
        ),
        (
            {"for": "-1000000h", "by": "month"},
            None,
            10,
            "for",
            "for=-1000000h by=month makes 1370 tasks, over the limit of 10",
        ),
    ],
)
def test_too_many_tasks_raises(
    rule: dict[str, str],
    rows: list[dict[str, str]] | None,
    max_tasks: int,
    key: str,
    message: str,
) -> None:
    with pytest.raises(BatchError) as caught:
        expand(rule, WHEN, meta_rows=rows, max_tasks=max_tasks)
    assert str(caught.value) == message
    assert caught.value.key == key


@pytest.mark.parametrize("by", ["hour", "day", "month"])
def test_range_past_year_one_raises_when_under_the_cap(by: str) -> None:
    with pytest.raises(BatchError) as caught:
        expand({"for": "-100000000h", "by": by}, WHEN, max_tasks=10**9)
    assert str(caught.value) == "for=-100000000h: reaches outside the years 1-9999"
    assert caught.value.key == "for"


def test_exactly_max_tasks_is_allowed() -> None:
    items = expand({"for": "-72h", "meta": "region:us,eu,apac"}, WHEN, max_tasks=12)
    assert len(items) == 12


@pytest.mark.parametrize("by", ["hour", "day", "month"])
def test_cap_is_checked_before_building_the_list(by: str) -> None:
    started = time.perf_counter()
    with pytest.raises(BatchError, match=r"over the limit of 10$"):
        expand({"for": "-100000000h", "by": by}, WHEN, max_tasks=10)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("r.jsonl", b'{"region": "us"}\n{"region": "eu"}\n', [{"region": "us"}, {"region": "eu"}]),
        ("r.json", b'{"region": "us"}', [{"region": "us"}]),
        ("r.ndjson", b'\n{"a": "1"}\r\n\n  \r\n{"a": "2"}\r\n', [{"a": "1"}, {"a": "2"}]),
        ("R.JSONL", b'{"a": "1"}', [{"a": "1"}]),
        (
            "r.jsonl",
            b'{"n": 1, "f": 1.5, "ok": true, "none": null, "o": {"k": [1]}}',
            [{"n": "1", "f": "1.5", "ok": "true", "none": "null", "o": '{"k": [1]}'}],
        ),
        ("r.jsonl", '{"a": "x\u2028y"}'.encode(), [{"a": "x\u2028y"}]),
        ("r.jsonl", b"{}", [{}]),
        ("r.jsonl", b"", []),
        ("r.jsonl", b"\n  \n", []),
        (
            "r.csv",
            b"region,tier\nus,1\neu,2\n",
            [{"region": "us", "tier": "1"}, {"region": "eu", "tier": "2"}],
        ),
        ("r.csv", b"a,b\r\n1,2\r\n", [{"a": "1", "b": "2"}]),
        ("r.csv", b'a,b\n"x,y","line\nbreak"\n', [{"a": "x,y", "b": "line\nbreak"}]),
        ("r.csv", "\ufeffregion\nus\n".encode(), [{"region": "us"}]),
        ("r.csv", b"\na,b\n\n1,2\n\n", [{"a": "1", "b": "2"}]),
        ("r.csv", b"a,b\n,\n", [{"a": "", "b": ""}]),
        ("r.CSV", b"region\nus", [{"region": "us"}]),
        ("r.csv", b"region,tier\n", []),
        ("r.csv", b"", []),
        ("dir.v2/r.csv", b"a\n1\n", [{"a": "1"}]),
    ],
)
def test_parse_meta_file(name: str, data: bytes, expected: list[dict[str, str]]) -> None:
    assert parse_meta_file(data, name) == expected


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("r.jsonl", b'{"a": "1"}\n["a"]\n', "r.jsonl: line 2: not a JSON object"),
        ("r.jsonl", b'{"a": "1"}\n\n"text"', "r.jsonl: line 3: not a JSON object"),
        ("r.jsonl", b'{"a": "1"}\n{"a": ', "r.jsonl: line 2: invalid JSON: Expecting value"),
        ("r.json", b'{\n  "a": "1"\n}', "r.json: line 1: invalid JSON: Expecting property name"),
        ("r.csv", b"a,b\n1,2\n1,2,3\n", "r.csv: line 3: 3 fields, but the header has 2"),
        ("r.csv", b"a,b\n1\n", "r.csv: line 2: 1 fields, but the header has 2"),
        ("r.csv", b"a,a\n1,2\n", "r.csv: line 1: the header repeats a column"),
        ("r.csv", b"a,,b\n1,2,3\n", "r.csv: line 1: the header has an empty column"),
        ("r.csv", b'a,b\n"x,1\n', "r.csv: line 2: unexpected end of data"),
        ("r.csv", b'a,b\n"x"y,1\n', "r.csv: line 2: ',' expected after '\"'"),
        ("r.csv", b"a\n\xff\n", "r.csv: not UTF-8 (byte 2)"),
        ("r.jsonl", b'{"a": "\xc3"}', "r.jsonl: not UTF-8 (byte 7)"),
        (
            "r.txt",
            b"a\n1\n",
            "r.txt: unsupported meta-file type: use .csv, .json, .jsonl or .ndjson",
        ),
        ("regions", b"", "regions: unsupported meta-file type"),
        ("r.csv.bak", b"a\n1\n", "r.csv.bak: unsupported meta-file type"),
    ],
)
def test_bad_meta_file_names_the_file(name: str, data: bytes, message: str) -> None:
    with pytest.raises(BatchError) as caught:
        parse_meta_file(data, name)
    assert str(caught.value).startswith(message)
    assert caught.value.key == "meta-file"


def test_meta_file_rows_feed_expand() -> None:
    rows = parse_meta_file(b"region,tier\nus,1\neu,2\n", "regions.csv")
    items = expand(parse_query("meta-file=regions.csv&for=0s"), WHEN, meta_rows=rows)
    assert items == [
        BatchItem(utc(2026, 11, 21), {"region": "us", "tier": "1"}),
        BatchItem(utc(2026, 11, 21), {"region": "eu", "tier": "2"}),
    ]
