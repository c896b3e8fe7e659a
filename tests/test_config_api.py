"""The API's settings: where it listens, and the admin token (never shown in a message)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlord.config import ConfigError, is_loopback
from tests.test_config import resolve

pytestmark = pytest.mark.usefixtures("cli_home")

TOKEN = "s3cret-admin-token-value"


def test_defaults_serve_loopback_on_8080_read_only(tmp_path: Path) -> None:
    config = resolve(tmp_path)
    assert (config.host, config.port, config.admin_token) == ("127.0.0.1", 8080, "")
    assert TOKEN not in repr(resolve(tmp_path, {"admin_token": TOKEN}))


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({"port": "0"}, {}, 0),
        ({}, {"FLOWLORD_PORT": "9090"}, 9090),
        ({"port": "65535"}, {"FLOWLORD_PORT": "1"}, 65535),
    ],
)
def test_port_from_flag_or_environment(
    tmp_path: Path, flags: dict[str, str], env: dict[str, str], expected: int
) -> None:
    assert resolve(tmp_path, flags, env).port == expected


@pytest.mark.parametrize("port", ["-1", "65536", "http", "80.5", ""])
def test_bad_port_is_refused_naming_it(tmp_path: Path, port: str) -> None:
    with pytest.raises(ConfigError, match=r"config 'port' from --port has value"):
        resolve(tmp_path, {"port": port})


@pytest.mark.parametrize("host", ["", "a b", "http://x", "1.2.3.4:80", "x" * 300])
def test_bad_host_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match=r"config 'host' from --host .*not an IP address"):
        resolve(tmp_path, {"host": host, "admin_token": TOKEN})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com"])
def test_non_loopback_bind_needs_a_token(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match=r"config 'host' .*no admin_token is set"):
        resolve(tmp_path, {"host": host})
    assert resolve(tmp_path, {"host": host}, {"FLOWLORD_ADMIN_TOKEN": TOKEN}).host == host
    assert resolve(tmp_path, {"host": host, "port": "0"}).port == 0  # no API: nothing exposed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_loopback_binds_need_no_token(tmp_path: Path, host: str) -> None:
    assert is_loopback(host)
    assert resolve(tmp_path, {"host": host}).host == host


@pytest.mark.parametrize("token", ["short", "has a space in it ok", "tøken-with-non-ascii-x"])
def test_a_weak_or_odd_token_is_refused_without_showing_it(tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError) as refused:
        resolve(tmp_path, {}, {"FLOWLORD_ADMIN_TOKEN": token})
    message = str(refused.value)
    assert "config 'admin_token' from FLOWLORD_ADMIN_TOKEN has value (hidden)" in message
    assert token not in message


def test_token_from_the_settings_file(tmp_path: Path) -> None:
    config = resolve(tmp_path, file_text=f'admin_token = "{TOKEN}"\nhost = "0.0.0.0"\n')
    assert (config.admin_token, config.host) == (TOKEN, "0.0.0.0")
