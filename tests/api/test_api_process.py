"""The API in real `flowlord run` processes: served beside the taskmaster, by a standby too;
a port that cannot be bound or an exposed address without a token stops the start (exit 2)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.client import Api, free_port
from tests.conftest import TESTDATA
from tests.processes import ROOT, flowlord_run, stop, text, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path) -> Path:
    shutil.copytree(TESTDATA / "workflows", tmp_path / "wf")
    return tmp_path


def answers(api: Api, path: str, status: int = 200) -> bool:
    try:
        return api.get(path, timeout=2).status == status
    except OSError:  # not listening yet
        return False


def test_run_serves_the_api_and_a_standby_serves_reads(home: Path) -> None:
    leader_api, standby_api = Api(f"http://127.0.0.1:{free_port()}"), None
    with flowlord_run(home, "leader.log", "--port", str(leader_api.port)) as leader:
        wait_until(lambda: answers(leader_api, "/readyz"), "the leader's API", leader)
        assert leader_api.get("/readyz").json == {"ready": True, "role": "leader"}
        standby_api = Api(f"http://127.0.0.1:{free_port()}")
        with flowlord_run(home, "standby.log", "--port", str(standby_api.port)) as standby:
            wait_until(lambda: answers(standby_api, "/readyz"), "the standby's API", standby)
            assert standby_api.get("/readyz").json == {"ready": True, "role": "standby"}
            assert standby_api.get("/healthz").json == {"status": "ok"}
            for read in ("/api/workflows", "/api/phases", "/api/controls"):
                assert standby_api.get(read).json == leader_api.get(read).json, read
            assert "tasks" in standby_api.get("/api/tasks").json  # a cron may fire meanwhile
            assert "flowlord_leader 0.0" in standby_api.get("/metrics").text
            assert stop(leader) == 0
            wait_until(lambda: standby_api.get("/readyz").json["role"] == "leader",
                       "the standby to take over", standby)  # fmt: skip
            assert stop(standby) == 0
    assert "API serving on http://127.0.0.1:" in text(home, "leader.log")


def test_a_port_in_use_stops_the_start_with_one_line(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "flowlord", "run", "--workflows", "wf", "--port", str(port)],
            cwd=home, capture_output=True, text=True, timeout=30,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"flowlord: config 'port' from --port has value {port}: "
        f"cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in done.stderr


def test_an_exposed_address_without_a_token_is_refused(home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flowlord", "run", "--workflows", "wf", "--host", "0.0.0.0"],
        cwd=home, capture_output=True, text=True, timeout=30,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 2
    assert "config 'host' from --host has value '0.0.0.0'" in done.stderr
    assert "no admin_token is set" in done.stderr and "Traceback" not in done.stderr
    assert not (home / "flowlord.db").exists()  # refused before anything was opened
