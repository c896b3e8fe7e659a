"""Task: the Go-compatible wire format, meta helpers and every way a message is rejected."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workflow.task import Result, Task, TaskError, parse_time, rfc3339

FULL = Task(
    type="t2",
    job="j1",
    info="s3://bucket/path?day=2026-11-21",
    meta="workflow=f1.toml&job=t2&retry=1",
    id="8e2a-01",
    created="2026-11-21T10:00:00Z",
    started="2026-11-21T10:00:01.123456789Z",
    ended="2026-11-21T10:00:05.5-07:00",
    result=Result.COMPLETE,
    msg="ok ✓ <done>",
)


def test_round_trip_keeps_every_field() -> None:
    assert Task.from_json(FULL.to_json()) == FULL
    assert Task.from_json(FULL.to_json().encode()) == FULL


def test_to_json_is_compact_in_go_field_order() -> None:
    text = FULL.to_json()
    assert " " not in text.replace("ok ✓ <done>", "")
    assert list(json.loads(text)) == [
        "type", "job", "info", "meta", "id", "created", "started", "ended", "result", "msg"
    ]  # fmt: skip


def test_go_produced_json_parses_to_fields() -> None:
    go = (
        '{"type":"t2","job":"j1","info":"s3://bucket/path?day=2026-11-21",'
        '"meta":"workflow=f1.toml\\u0026job=t2\\u0026retry=1","id":"8e2a-01",'
        '"created":"2026-11-21T10:00:00Z","started":"2026-11-21T10:00:01.123456789Z",'
        '"ended":"2026-11-21T10:00:05.5-07:00","result":"complete","msg":"ok ✓ \\u003cdone\\u003e"}'
    )
    task = Task.from_json(go.encode())
    assert task == FULL
    assert task.result is Result.COMPLETE


def test_unknown_keys_are_ignored() -> None:
    task = Task.from_json('{"type":"x","future":{"a":[1]},"created":"2026-11-21T10:00:00Z"}')
    assert task == Task(type="x", created="2026-11-21T10:00:00Z")


def test_null_fields_are_unset_as_in_go() -> None:
    assert Task.from_json('{"type":"x","job":null,"result":null}') == Task(type="x")


def test_omitempty_fields_are_left_out() -> None:
    written = json.loads(Task(type="x").to_json())
    assert written == {"type": "x", "info": "", "id": "", "created": ""}


def test_omitempty_fields_are_written_when_set() -> None:
    written = json.loads(Task(type="x", job="j", result=Result.ERROR, msg="m").to_json())
    assert written == {"type": "x", "job": "j", "info": "", "id": "", "created": "",
                       "result": "error", "msg": "m"}  # fmt: skip


def test_meta_values_and_value() -> None:
    task = Task(type="x", meta="workflow=f1.toml&job=t2&retry=1&job=dup&path=a%2Fb")
    assert task.meta_values() == {"workflow": "f1.toml", "job": "t2", "retry": "1", "path": "a/b"}
    assert task.meta_value("retry") == "1"
    assert task.meta_value("absent") == ""


def test_with_meta_replaces_and_appends_keeping_others_in_order() -> None:
    task = Task(type="x", id="i", meta="workflow=f1.toml&job=t2&retry=1")
    updated = task.with_meta(retry="2", cron="0 * * * *")
    assert updated.meta_values() == {
        "workflow": "f1.toml", "job": "t2", "retry": "2", "cron": "0 * * * *"
    }  # fmt: skip
    assert list(updated.meta_values()) == ["workflow", "job", "retry", "cron"]
    assert updated.id == "i"
    assert task.meta == "workflow=f1.toml&job=t2&retry=1"


def test_with_meta_value_needing_escape_survives() -> None:
    updated = Task(type="x").with_meta(info="a&b=c+d")
    assert updated.meta_value("info") == "a&b=c+d"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"type":"x",', "invalid task JSON"),
        ('{"type":"x",', "column 13 (char 12)"),
        ('{"type": x}', "line 1 column 10"),
        ("", "invalid task JSON"),
        ("1" * 5000, "invalid task JSON"),
        ("[" * 100_000, "invalid task JSON"),
        (b'{"type":"\xff"}', "not valid UTF-8"),
        (b'{"type":"\xff"}', "byte 9"),
        ("[]", "must be an object, got array"),
        ('"x"', "must be an object, got string"),
        ("null", "must be an object, got null"),
        ("{}", "'type' is missing"),
        ('{"type":null}', "'type' is missing"),
        ('{"type":""}', "'type' is empty"),
        ('{"type":1}', "'type' must be a string, got number"),
        ('{"type":"x","job":true}', "'job' must be a string, got boolean"),
        ('{"type":"x","meta":{"a":"b"}}', "'meta' must be a string, got object"),
        ('{"type":"x","id":["a"]}', "'id' must be a string, got array"),
        ('{"type":"x","msg":1.5}', "'msg' must be a string, got number"),
        ('{"type":"x","result":"done"}', "'result' is 'done'"),
        ('{"type":"x","result":"done"}', '"", "complete", "error", "alert", "warn"'),
        ('{"type":"x","result":"Complete"}', "'result' is 'Complete'"),
        ('{"type":"x","created":"yesterday"}', "'created' is not an RFC 3339 time: 'yesterday'"),
        ('{"type":"x","started":"2026-11-21T10:00:00"}', "'started' is not an RFC 3339 time"),
        ('{"type":"x","ended":"2026-11-21"}', "'ended' is not an RFC 3339 time"),
        ('{"type":"x","created":"2026-11-21 10:00:00Z"}', "'created' is not an RFC 3339"),
        ('{"type":"x","created":"20261121T100000Z"}', "'created' is not an RFC 3339"),
        ('{"type":"x","created":"2026-11-21T10:00Z"}', "'created' is not an RFC 3339"),
        ('{"type":"x","created":"2026-11-21T10:00:00z"}', "'created' is not an RFC 3339"),
        ('{"type":"x","created":"2026-02-30T10:00:00Z"}', "'created' is not a valid time"),
        ('{"type":"x","created":"2026-11-21T24:00:00Z"}', "'created' is not a valid time"),
    ],
)
def test_from_json_rejects(data: str | bytes, expected: str) -> None:
    with pytest.raises(TaskError) as caught:
        Task.from_json(data)
    assert isinstance(caught.value, ValueError)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T10:00:00Z", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T10:00:00.000001+00:00", datetime(2026, 11, 21, 10, 0, 0, 1, tzinfo=UTC)),
        ("2026-11-21T10:00:00.123456789Z", datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)),
        (
            "2026-11-21T10:00:00-07:00",
            datetime(2026, 11, 21, 10, tzinfo=timezone(timedelta(hours=-7))),
        ),
    ],
)
def test_parse_time_accepts_rfc3339(text: str, expected: datetime) -> None:
    parsed = parse_time(text, "created")
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 21, 10, tzinfo=UTC), "2026-11-21T10:00:00Z"),
        (datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=UTC), "2026-11-21T10:00:00.500000Z"),
        (
            datetime(2026, 11, 21, 10, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2026-11-21T10:00:00+05:30",
        ),
    ],
)
def test_rfc3339_formats_and_parses_back(when: datetime, expected: str) -> None:
    assert rfc3339(when) == expected
    assert parse_time(expected, "created") == when


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 21, 10), "naive"),
        (datetime(2026, 11, 21, 10, tzinfo=timezone(timedelta(seconds=30))), "sub-minute"),
    ],
)
def test_rfc3339_rejects_what_it_cannot_express(when: datetime, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        rfc3339(when)
