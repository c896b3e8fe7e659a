"""Uploading, deleting and restoring workflow files, and their history, through a real server:
what reaches the disk, what the live cache loads, and what is refused with nothing written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import apsw
import pytest

from cache.sqlite_store import KEPT_VERSIONS
from tests.api.client import Api, Reply
from tests.api.conftest import Served

CRON = '[[Phase]]\ntask = "{name}"\nrule = "cron={minute} 0 * * *"\n'
CHILD = '\n[[Phase]]\ntask = "{name}-child"\ndependsOn = "{name}"\n'


def toml(name: str, minute: int = 0, *, child: bool = False) -> bytes:
    text = CRON.format(name=name, minute=minute) + (CHILD.format(name=name) if child else "")
    return text.encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(api: Api, key: str, data: bytes, *, headers: dict[str, str] | None = None) -> Reply:
    sent = {"Content-Type": "application/toml", **(headers or {})}
    return api.request("PUT", f"/api/workflows/{key}", body=data, headers=sent)


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under `root` but the database: a file's bytes, a folder's or link's kind."""
    found: dict[str, bytes | str] = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(folder, name)
            key = path.relative_to(root).as_posix()
            if name.startswith("flowlord.db"):
                continue
            if path.is_symlink():
                found[key] = f"link to {os.readlink(path)}"
            else:
                found[key] = path.read_bytes() if path.is_file() else "folder"
    return found


def tasks(served: Served, key: str) -> list[str]:
    return [p.task for p in served.cache.phases(key)]


def test_upload_creates_then_replaces(served: Served, api: Api) -> None:
    first = toml("fresh")
    reply = put(api, "new/sub/fresh.toml", first)
    assert reply.status == 201, reply.body
    assert reply.json == {
        "file": "new/sub/fresh.toml", "hash": sha(first), "created": True,
        "phases": [{"task": "fresh", "status": ""}], "warnings": [],
        "changed": ["new/sub/fresh.toml"], "errors": {},
    }  # fmt: skip
    assert reply.headers["etag"] == f'"{sha(first)}"'
    assert (served.folder / "new/sub/fresh.toml").read_bytes() == first
    assert tasks(served, "new/sub/fresh.toml") == ["fresh"]  # the live cache loaded it
    assert ["new/sub/fresh.toml"] in served.changes  # and told the taskmaster
    assert not [p for p in (served.folder / "new/sub").iterdir() if p.name.startswith(".")]

    second = toml("fresh", 3, child=True)
    reply = put(api, "new/sub/fresh.toml", second)
    assert reply.status == 200, reply.body
    assert (reply.json["hash"], reply.json["created"]) == (sha(second), False)
    assert (served.folder / "new/sub/fresh.toml").read_bytes() == second
    assert tasks(served, "new/sub/fresh.toml") == ["fresh", "fresh-child"]
    history = api.get("/api/workflows/new/sub/fresh.toml/versions").json
    assert history["current"] == sha(second)
    assert [(v["hash"], v["size"], v["current"]) for v in history["versions"]] == [
        (sha(second), len(second), True),
        (sha(first), len(first), False),
    ]


def test_a_replaced_file_keeps_its_mode(served: Served, api: Api) -> None:
    os.chmod(served.folder / "etl.toml", 0o640)
    assert put(api, "etl.toml", toml("etl")).status == 200
    assert (served.folder / "etl.toml").stat().st_mode & 0o777 == 0o640


REFUSED_BODIES = {
    "syntax": (b"[[Phase]\ntask = 1", "TOML syntax"),
    "error status": (b'[[Phase]]\ntask = "x"\nrule = "0 0 * * *"\n', "invalid rule format"),
    "empty": (b"", "empty file"),
    "blank": (b" \n\t\n", "empty file"),
    "not utf-8": (b"\xff\xfe[[Phase]]\n", "not UTF-8"),
    "binary": (bytes(range(256)), "not UTF-8"),
    "nul": (b"\x00\x01\x02\x03", "TOML syntax"),
    "no phase": (b"x = 1\n", "no [[Phase]]"),
}


@pytest.mark.parametrize("key", ["etl.toml", "brand/new.toml"])
@pytest.mark.parametrize("case", sorted(REFUSED_BODIES))
def test_content_that_does_not_validate_is_422_and_nothing_is_written(
    served: Served, api: Api, key: str, case: str
) -> None:
    data, problem = REFUSED_BODIES[case]
    before = snapshot(served.folder.parent)
    versions_before = served.cache.versions(key)
    known_before = served.cache.workflow_file(key)
    reply = put(api, key, data)
    assert reply.status == 422, reply.body
    body = reply.json
    assert body["field"] == "body" and problem in body["error"], body
    assert set(body) == {"error", "field", "phases"}
    assert snapshot(served.folder.parent) == before  # on disk
    assert served.cache.versions(key) == versions_before  # and in the database
    assert served.cache.workflow_file(key) == known_before


def test_a_422_names_every_phase_status(api: Api) -> None:
    data = toml("ok") + b'\n[[Phase]]\ntask = "orphan"\ndependsOn = "nobody"\n'
    body = put(api, "two.toml", data).json
    assert body["phases"] == [
        {"task": "ok", "status": ""},
        {"task": "orphan", "status": "parent task not found: nobody"},
    ]
    assert "phase orphan: parent task not found: nobody" in body["error"]


def test_a_warning_does_not_refuse_the_upload(served: Served, api: Api) -> None:
    data = toml("warned").replace(b"* * *", b"* * *&colour=red")
    reply = put(api, "warned.toml", data)
    assert reply.status == 201, reply.body
    assert reply.json["phases"] == [
        {"task": "warned", "status": "warning: unknown rule key: colour"}
    ]


def test_if_match(served: Served, api: Api) -> None:
    etl = served.folder / "etl.toml"
    current = sha(etl.read_bytes())
    original = etl.read_bytes()

    reply = put(api, "etl.toml", toml("etl"), headers={"If-Match": sha(b"stale")})
    assert reply.status == 409 and reply.error()["field"] == "If-Match"
    assert current in reply.error()["error"]  # says what the file is now
    assert etl.read_bytes() == original
    reply = api.delete("/api/workflows/etl.toml", headers={"If-Match": sha(b"stale")})
    assert reply.status == 409 and etl.read_bytes() == original

    reply = put(api, "nothing.toml", toml("n"), headers={"If-Match": "*"})
    assert reply.status == 409 and not (served.folder / "nothing.toml").exists()
    reply = put(api, "nothing.toml", toml("n"), headers={"If-Match": current})
    assert reply.status == 409 and not (served.folder / "nothing.toml").exists()

    reply = put(api, "etl.toml", toml("etl"), headers={"If-Match": f'"{current}"'})
    assert reply.status == 200, reply.body
    reply = put(api, "etl.toml", toml("etl", 1), headers={"If-Match": "*"})
    assert reply.status == 200, reply.body
    reply = api.delete("/api/workflows/etl.toml", headers={"If-Match": sha(toml("etl", 1))})
    assert reply.status == 200 and not etl.exists()
    reply = api.delete("/api/workflows/etl.toml", headers={"If-Match": "*"})
    assert reply.status == 404


def test_delete_then_restore(served: Served, api: Api) -> None:
    etl = served.folder / "etl.toml"
    original = etl.read_bytes()
    phases = tasks(served, "etl.toml")
    assert phases

    reply = api.delete("/api/workflows/etl.toml")
    assert reply.status == 200, reply.body
    assert reply.json == {"file": "etl.toml", "changed": ["-etl.toml"], "errors": {}}
    assert not etl.exists() and tasks(served, "etl.toml") == []
    assert api.delete("/api/workflows/etl.toml").status == 404

    history = api.get("/api/workflows/etl.toml/versions").json
    assert history["current"] is None
    assert [v["hash"] for v in history["versions"]] == [sha(original)]

    reply = api.post("/api/workflows/etl.toml/restore", {"hash": sha(original)})
    assert reply.status == 201, reply.body
    assert reply.json["created"] is True and reply.json["hash"] == sha(original)
    assert etl.read_bytes() == original
    assert tasks(served, "etl.toml") == phases

    assert put(api, "etl.toml", toml("etl")).status == 200
    reply = api.post("/api/workflows/etl.toml/restore", {"hash": sha(original)})
    assert reply.status == 200 and etl.read_bytes() == original
    assert api.get("/api/workflows/etl.toml/versions").json["current"] == sha(original)


def test_restore_of_an_unknown_version_is_404(served: Served, api: Api) -> None:
    reply = api.post("/api/workflows/etl.toml/restore", {"hash": sha(b"never")})
    assert reply.status == 404 and reply.error()["field"] == "hash"
    reply = api.post("/api/workflows/etl.toml/restore", {})
    assert reply.status == 422 and reply.error()["field"] == "hash"


def test_restore_of_a_version_that_no_longer_validates_is_422(served: Served, api: Api) -> None:
    """A version stored by an older, laxer flowlord goes through today's checks."""
    stale = b'[[Phase]]\ntask = "old"\nrule = "0 0 * * *"\n'
    raw = apsw.Connection(str(served.db))
    raw.execute(
        "INSERT INTO workflow_versions (file_path, file_hash, loaded_at, content) "
        "VALUES ('etl.toml', ?, '2020-01-01T00:00:00Z', ?)",
        (sha(stale), stale),
    )
    raw.close()
    before = (served.folder / "etl.toml").read_bytes()
    reply = api.post("/api/workflows/etl.toml/restore", {"hash": sha(stale)})
    assert reply.status == 422 and reply.json["field"] == "hash"
    assert "invalid rule format" in reply.json["error"]
    assert (served.folder / "etl.toml").read_bytes() == before


def test_history_keeps_the_last_50_versions(served: Served, api: Api) -> None:
    uploads = [toml("capped", n) for n in range(KEPT_VERSIONS + 2)]
    assert len(set(uploads)) == 52
    for data in uploads:
        assert put(api, "capped.toml", data).status in (200, 201)
    versions = api.get("/api/workflows/capped.toml/versions").json["versions"]
    assert [v["hash"] for v in versions] == [sha(data) for data in reversed(uploads[2:])]
    for dropped in uploads[:2]:
        assert api.get(f"/api/workflows/capped.toml/versions/{sha(dropped)}").status == 404
    kept = api.get(f"/api/workflows/capped.toml/versions/{sha(uploads[2])}").json
    assert kept["content"] == uploads[2].decode() and kept["size"] == len(uploads[2])


def test_diff(api: Api) -> None:
    old, new = toml("d", 1), toml("d", 2, child=True)
    put(api, "d.toml", old)
    put(api, "d.toml", new)
    reply = api.get(f"/api/workflows/d.toml/diff?from={sha(old)}")
    assert reply.status == 200, reply.body
    body = reply.json
    assert (body["file"], body["from"], body["to"]) == ("d.toml", sha(old), sha(new))
    lines = body["diff"].splitlines()
    assert lines[0] == f"--- a/d.toml@{sha(old)[:12]}" and lines[1].startswith("+++ b/d.toml@")
    assert '-rule = "cron=1 0 * * *"' in lines and '+rule = "cron=2 0 * * *"' in lines
    assert '+dependsOn = "d"' in lines

    back = api.get(f"/api/workflows/d.toml/diff?from={sha(new)}&to={sha(old)}").json["diff"]
    assert '-dependsOn = "d"' in back.splitlines()
    assert api.get(f"/api/workflows/d.toml/diff?from={sha(new)}").json["diff"] == ""


def test_diff_errors(api: Api) -> None:
    put(api, "d.toml", toml("d"))
    reply = api.get("/api/workflows/d.toml/diff")
    assert reply.status == 422 and reply.error()["field"] == "from"
    reply = api.get(f"/api/workflows/d.toml/diff?from={sha(b'x')}")
    assert reply.status == 404 and reply.error()["field"] == "from"
    reply = api.get(f"/api/workflows/d.toml/diff?from={sha(toml('d'))}&to=abc")
    assert reply.status == 404 and reply.error()["field"] == "to"


def test_history_of_unknown_files_and_versions_is_404(api: Api) -> None:
    reply = api.get("/api/workflows/nowhere.toml/versions")
    assert reply.status == 404 and reply.error()["field"] == "file"
    reply = api.get(f"/api/workflows/etl.toml/versions/{sha(b'x')}")
    assert reply.status == 404 and reply.error()["field"] == "hash"
    reply = api.get(f"/api/workflows/nowhere.toml/diff?from={sha(b'x')}")
    assert reply.status == 404


BAD_KEYS = [
    "../x.toml",
    "%2e%2e/x.toml",
    "/etc/x.toml",
    ".hidden.toml",
    "sub/.hidden/x.toml",
    "a.txt",
    "sub/../../x.toml",
    "out/x.toml",  # out -> a folder outside the workflow folder
]


def bad_key_requests(key: str, api: Api) -> list[Reply]:
    body = toml("x")
    return [
        put(api, key, body),
        api.delete(f"/api/workflows/{key}"),
        api.post(f"/api/workflows/{key}/restore", {"hash": sha(body)}),
        api.get(f"/api/workflows/{key}/versions"),
        api.get(f"/api/workflows/{key}/versions/{sha(body)}"),
        api.get(f"/api/workflows/{key}/diff?from={sha(body)}"),
    ]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_every_bad_key_is_400_and_nothing_is_created(served: Served, api: Api, key: str) -> None:
    outside = served.folder.parent / "outside"
    outside.mkdir()
    (outside / "x.toml").write_bytes(toml("outside"))
    (served.folder / "out").symlink_to(outside, target_is_directory=True)
    before = snapshot(served.folder.parent)
    for reply in bad_key_requests(key, api):
        assert reply.status == 400, (reply.status, reply.body)
        assert reply.error()["field"] == "file"
    assert snapshot(served.folder.parent) == before
    assert not Path("/etc/x.toml").exists()


def test_writes_without_a_token_are_401_and_write_nothing(served: Served) -> None:
    anonymous = served.anonymous
    original = (served.folder / "etl.toml").read_bytes()
    before = snapshot(served.folder.parent)
    replies = [
        put(anonymous, "etl.toml", toml("etl")),
        put(anonymous, "brand/new.toml", toml("new")),
        anonymous.delete("/api/workflows/etl.toml"),
        anonymous.post("/api/workflows/etl.toml/restore", {"hash": sha(original)}),
    ]
    assert [r.status for r in replies] == [401] * 4
    assert snapshot(served.folder.parent) == before
    assert len(served.cache.versions("etl.toml")) == 1


def test_a_path_that_holds_no_regular_file_is_409(served: Served, api: Api) -> None:
    (served.folder / "dir.toml").mkdir()
    os.mkfifo(served.folder / "fifo.toml")
    assert put(api, "dir.toml", toml("d")).status == 409
    assert api.delete("/api/workflows/dir.toml").status == 409
    assert put(api, "etl.toml/inside.toml", toml("i")).status == 409  # a file on the way
    reply = put(api, "fifo.toml", toml("f"), headers={"If-Match": "*"})  # read, never blocks
    assert reply.status == 409 and "not a regular file" in reply.error()["error"]
    assert (served.folder / "dir.toml").is_dir() and (served.folder / "etl.toml").is_file()


def test_a_symlinked_file_is_not_replaced(served: Served, api: Api) -> None:
    (served.folder / "alias.toml").symlink_to("etl.toml")
    original = (served.folder / "etl.toml").read_bytes()
    reply = put(api, "alias.toml", toml("alias"))
    assert reply.status == 409 and "symlink" in reply.error()["error"]
    assert (served.folder / "alias.toml").is_symlink()
    assert (served.folder / "etl.toml").read_bytes() == original


def test_openapi_describes_the_toml_body(api: Api) -> None:
    paths = api.get("/openapi.json").json["paths"]
    body = paths["/api/workflows/{file}"]["put"]["requestBody"]
    assert body["content"]["application/toml"] == {"schema": {"type": "string"}}
    assert body["required"] is True
    for path, method in [
        ("/api/workflows/{file}", "put"),
        ("/api/workflows/{file}", "delete"),
        ("/api/workflows/{file}/restore", "post"),
        ("/api/workflows/{file}/versions", "get"),
        ("/api/workflows/{file}/versions/{hash}", "get"),
        ("/api/workflows/{file}/diff", "get"),
    ]:
        answers = paths[path][method]["responses"]
        assert "200" in answers and "404" in answers and "422" in answers, (path, method)
