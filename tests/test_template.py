"""Phase templates: rendering a task's info and reading a done task's time back from it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workflow.template import TemplateError, info_time, path_time, render

WHEN = datetime(2026, 11, 21, 5, 7, 9, tzinfo=UTC)
META = {"region": "us-east-1", "job": "clicks", "empty": ""}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{yyyy}", "2026"),
        ("{mm}", "11"),
        ("{dd}", "21"),
        ("{hh}", "05"),
        ("{ts}", "20261121T050709"),
        ("{meta:region}", "us-east-1"),
        ("{meta:empty}", ""),
        (
            "s3://raw/{yyyy}/{mm}/{dd}/{hh}/?ts={ts}&r={meta:region}",
            "s3://raw/2026/11/21/05/?ts=20261121T050709&r=us-east-1",
        ),
        ("?day={yyyy}-{mm}-{dd}&job={meta:job}", "?day=2026-11-21&job=clicks"),
        ("{hh}{hh}", "0505"),
        ("gs://bucket/static/file.json", "gs://bucket/static/file.json"),
        ("", ""),
        ("?a=1&b=c:d", "?a=1&b=c:d"),
        ("{ {yyyy} }", "{ 2026 }"),
        ("{{yyyy}}", "{2026}"),
        ("}{mm}{", "}11{"),
        ("{1abc}/{}/{-x}/{a b}/{a{yyyy}c}", "{1abc}/{}/{-x}/{a b}/{a2026c}"),
        ("{ yyyy}", "{ yyyy}"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, WHEN, META) == expected


def test_render_pads_small_values() -> None:
    when = datetime(987, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert render("{yyyy}-{mm}-{dd}T{hh}|{ts}", when, {}) == "0987-01-02T03|09870102T030405"


def test_render_uses_wall_time_of_the_given_zone() -> None:
    when = datetime(2026, 11, 21, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert render("{yyyy}{mm}{dd}{hh}/{ts}", when, {}) == "2026112123/20261121T233000"


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{foo}", "{foo}"),
        ("s3://x/{yyyy}/{YYYY}", "{YYYY}"),
        ("{yyyy:x}", "{yyyy:x}"),
        ("{meta}", "{meta}"),
        ("{hour}", "{hour}"),
        ("{my-key:with:colons}", "{my-key:with:colons}"),
    ],
)
def test_render_unknown_key(template: str, named: str) -> None:
    with pytest.raises(TemplateError, match=f"unknown template key {re.escape(named)}$"):
        render(template, WHEN, META)


@pytest.mark.parametrize(("template", "key"), [("{meta:zone}", "zone"), ("{meta:}", "")])
def test_render_missing_meta_key(template: str, key: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render(template, WHEN, META)
    assert str(raised.value) == f"meta key {key!r} not in task meta"


def test_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)


def test_render_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render("{yyyy}", datetime(2026, 11, 21, 5), {})


def test_render_rejects_naive_time_even_without_placeholders() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render("static", datetime(2026, 11, 21, 5), {})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ("?time=2026-11-21T05:00:00Z", utc(2026, 11, 21, 5)),
        ("?time=2026-11-21T05:06:07.5Z", utc(2026, 11, 21, 5, 6, 7, 500_000)),
        ("?time=2026-11-21T05:00:00-05:00", utc(2026, 11, 21, 10)),
        ("?time=2026-11-21T05:00:00%2B02:00", utc(2026, 11, 21, 3)),
        ("?time=2026-11-21T05:00:00+02:00", utc(2026, 11, 21, 3)),
        ("?time=2026-11-21T05:00:00", utc(2026, 11, 21, 5)),
        ("?hour=2026-11-21T05", utc(2026, 11, 21, 5)),
        ("?hour=2026-11-21T05:00:00", utc(2026, 11, 21, 5)),
        ("?hour=2026-11-21T05:00:00Z", utc(2026, 11, 21, 5)),
        ("?hour=2026-11-21T05:00:00+01:00", utc(2026, 11, 21, 4)),
        ("?day=2026-11-21", utc(2026, 11, 21)),
        ("?date=2026-11-21", utc(2026, 11, 21)),
        ("s3://b/x/file.json?job=a&day=2026-02-28", utc(2026, 2, 28)),
    ],
)
def test_info_time_params(info: str, expected: datetime) -> None:
    got = info_time(info)
    assert got == expected
    assert got is not None
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (
            "?date=2026-01-01&day=2026-02-02&hour=2026-03-03T03&time=2026-04-04T04:00:00Z",
            utc(2026, 4, 4, 4),
        ),
        ("?date=2026-01-01&day=2026-02-02&hour=2026-03-03T03", utc(2026, 3, 3, 3)),
        ("?date=2026-01-01&day=2026-02-02", utc(2026, 2, 2)),
        ("s3://b/2026/05/05/05/f.gz?date=2026-01-01", utc(2026, 1, 1)),
        ("?time=&day=2026-02-02", utc(2026, 2, 2)),
        ("?day=2026-02-02&day=2026-03-03", utc(2026, 2, 2)),
    ],
)
def test_info_time_priority(info: str, expected: datetime) -> None:
    assert info_time(info) == expected


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ("s3://bucket/clicks/2026/11/21/05/part-0.json.gz", utc(2026, 11, 21, 5)),
        ("s3://bucket/clicks/2026/11/21/05/part-0.json.gz?job=load", utc(2026, 11, 21, 5)),
        ("/data/2026-11-21/file.csv?region=eu&ts=whatever", utc(2026, 11, 21)),
        ("/data/v2/file.csv?job=load", None),
        ("?job=load", None),
        ("", None),
    ],
)
def test_info_time_falls_back_to_path(info: str, expected: datetime | None) -> None:
    assert info_time(info) == expected


@pytest.mark.parametrize(
    ("info", "named"),
    [
        ("?day=2026-13-45", "day='2026-13-45'"),
        ("?day=2026-11-21T05", "day='2026-11-21T05'"),
        ("?date=20261121", "date='20261121'"),
        ("?hour=2026-11-21T24", "hour='2026-11-21T24'"),
        ("?hour=2026-11-21 05", "hour='2026-11-21 05'"),
        ("?time=2026-11-21", "time='2026-11-21'"),
        ("?time=2026-11-21T05:00:00%2B25:00", "time='2026-11-21T05:00:00+25:00'"),
        ("?time=2026-11-21T05:00:00-01:75", "time='2026-11-21T05:00:00-01:75'"),
        ("?time=yesterday&day=2026-11-21", "time='yesterday'"),
        ("s3://b/2026/11/21/05/f.gz?day=soon", "day='soon'"),
    ],
)
def test_info_time_malformed_param(info: str, named: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(named)):
        info_time(info)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("s3://bucket/clicks/2026/11/21/05/part-0.json.gz", utc(2026, 11, 21, 5)),
        ("s3://bucket/clicks/2026/11/21/part-0.json.gz", utc(2026, 11, 21)),
        ("/clicks/2026/11/21/05", utc(2026, 11, 21, 5)),
        ("2026/11/21/file.csv", utc(2026, 11, 21)),
        ("/data/2026-11-21/file.csv", utc(2026, 11, 21)),
        ("/data/20261121/file.csv", utc(2026, 11, 21)),
        ("gs://b/x/20261121T05.json", utc(2026, 11, 21, 5)),
        ("gs://b/x/20261121T050709.json", utc(2026, 11, 21, 5)),
        ("/a/b/file_2026112105.log", utc(2026, 11, 21, 5)),
        ("/a/b/2026-11-21T05.log", utc(2026, 11, 21, 5)),
        ("/a/b/2026-11-21T05:30:00.log", utc(2026, 11, 21, 5)),
        ("/a/2026/11/21/file_2026112105.log", utc(2026, 11, 21, 5)),
        ("/a/2026/11/21/05/file_2026112207.log", utc(2026, 11, 21, 5)),
        ("/a/2026-11-21/file_2026-11-21T07.log", utc(2026, 11, 21, 7)),
        ("/a/2026/13/21/2026/11/20/x", utc(2026, 11, 20)),
        ("/a/20261345/20261120/x", utc(2026, 11, 20)),
        ("/a/2026-11-21T25/x", utc(2026, 11, 21)),
        ("/data/v2/file.csv", None),
        ("/data/12345678/x", None),
        ("/data/19691231/x", None),
        ("/data/22010101/x", None),
        ("/data/1763701200/x", None),
        ("/data/2026/13/01/x", None),
        ("/data/2026-02-30/x", None),
        ("/data/202611211/x", None),
        ("/data/2026/11/x", None),
        ("/data/2026/11/21.csv", None),
        ("/data/2026/11/21/0512.csv", utc(2026, 11, 21)),
        ("", None),
    ],
)
def test_path_time(path: str, expected: datetime | None) -> None:
    assert path_time(path) == expected


def test_path_time_is_utc_aware() -> None:
    got = path_time("/data/2026-11-21/file.csv")
    assert got is not None
    assert got.tzinfo is UTC


def test_info_time_roundtrips_a_rendered_template() -> None:
    when = datetime(2026, 11, 21, 0, 30, tzinfo=timezone(timedelta(hours=-8)))
    info = render("s3://raw/{yyyy}/{mm}/{dd}/{hh}/?hour={yyyy}-{mm}-{dd}T{hh}", when, {})
    assert info == "s3://raw/2026/11/21/00/?hour=2026-11-21T00"
    assert info_time(info) == utc(2026, 11, 21, 0)
