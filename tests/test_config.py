"""Settings: one order (flag, environment, file, default), and one line for every bad one."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from flowlord.config import (
    SETTINGS,
    ConfigError,
    RunConfig,
    read_config_file,
    resolve_config,
)

RUN = tuple(SETTINGS)


@pytest.fixture
def workflows(tmp_path: Path) -> Path:
    folder = tmp_path / "wf"
    folder.mkdir()
    return folder


# Relative flags and environment values start from the current folder: tmp_path here.
pytestmark = pytest.mark.usefixtures("cli_home")


def resolve(
    tmp_path: Path,
    flags: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    file_text: str | None = None,
    **kwargs: object,
) -> RunConfig:
    """Settings from these flags, environment and `tmp_path/conf/flowlord.toml` text."""
    file = None
    if file_text is not None:
        (tmp_path / "conf").mkdir(exist_ok=True)
        (tmp_path / "conf" / "flowlord.toml").write_text(file_text)
        file = read_config_file(str(tmp_path / "conf" / "flowlord.toml"))
    return resolve_config(flags or {}, env or {}, file, **kwargs)  # type: ignore[arg-type]


def test_settings_table_covers_every_field() -> None:
    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"origins"}
    assert set(SETTINGS) == fields


def test_defaults(tmp_path: Path) -> None:
    config = resolve(tmp_path)
    assert config == RunConfig()
    assert (config.db, config.bus_dir, config.log_level, config.log_format) == (
        "flowlord.db", "bus", "info", "text",
    )  # fmt: skip
    assert (tmp_path / "bus").is_dir()  # the file bus folder is made when the settings are checked
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.db = "x"  # type: ignore[misc]


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    file_text = 'timezone = "Asia/Tokyo"\nmax_tasks = 5\nlog_level = "warning"\n'
    env = {"FLOWLORD_TIMEZONE": "Europe/Paris", "FLOWLORD_MAX_TASKS": "7"}
    config = resolve(tmp_path, {"timezone": "America/New_York"}, env, file_text)
    assert (config.timezone, config.max_tasks, config.log_level, config.log_format) == (
        "America/New_York", 7, "warning", "text",
    )  # fmt: skip
    assert config.origins["timezone"] == "--timezone"
    assert config.origins["max_tasks"] == "FLOWLORD_MAX_TASKS"
    assert config.origins["log_level"] == str(tmp_path / "conf" / "flowlord.toml")
    assert "log_format" not in config.origins


def test_paths_from_a_file_are_relative_to_its_folder(tmp_path: Path) -> None:
    (tmp_path / "conf" / "wf").mkdir(parents=True)
    text = 'workflows = "wf"\ndb = "state.db"\nbus_dir = "bus"\n'
    config = resolve(tmp_path, file_text=text)
    assert config.workflows == str(tmp_path / "conf" / "wf")
    assert config.db == str(tmp_path / "conf" / "state.db")
    assert (tmp_path / "conf" / "bus").is_dir()
    assert not (tmp_path / "bus").exists()


def test_paths_from_flags_and_env_are_relative_to_the_current_folder(
    tmp_path: Path, workflows: Path
) -> None:
    config = resolve(tmp_path, {"workflows": "wf"}, {"FLOWLORD_DB": "x.db"}, 'db = "y.db"\n')
    assert (config.workflows, config.db) == ("wf", "x.db")


def test_log_settings_are_case_insensitive(tmp_path: Path) -> None:
    config = resolve(tmp_path, {"log_level": "DEBUG"}, {"FLOWLORD_LOG_FORMAT": "Json"})
    assert (config.log_level, config.log_format) == ("debug", "json")


def test_failed_topic_dash_disables_it(tmp_path: Path) -> None:
    assert resolve(tmp_path, {"failed_topic": "-"}).failed_topic == "-"


ABSURD_ZONES = ("", " ", "../../etc/passwd", "A" * 5000, "/etc/localtime", "Europe/",
                "posix/../../x", "zone.tab", "Europe", "utc")  # fmt: skip
BAD_TEXT = [  # (setting, value as text, reason): each tried from a flag, the environment, a file
    ("max_tasks", "inf", "not an integer"),
    ("max_tasks", "1.5", "not an integer"),
    ("max_tasks", "0", "must be between 1 and 1000000"),
    ("max_tasks", "1000001", "must be between 1 and 1000000"),
    ("max_tasks", "9" * 4000, "must be between 1 and 1000000"),
    ("done_topic", "a b", "not a topic"),
    ("done_topic", "-", "not a topic"),
    ("files_topic", ".hidden", "not a topic"),
    ("failed_topic", "../x", "not a topic"),
    ("failed_topic", "done", "the same topic as 'done_topic'"),
    ("bus", "kafka", "not one of file, memory, redis"),
    ("redis_url", "http://127.0.0.1:6379", "not a Redis URL: use redis://, rediss://, unix://"),
    ("redis_url", "redis://", "a Redis URL needs a host"),
    ("redis_url", "localhost:6379", "not a Redis URL"),
    ("redis_claim_idle", "5ms", "must be between 10ms and 24h"),
    ("redis_claim_idle", "soon", "not a duration"),
    ("redis_max_len", "999", "must be between 1000 and 1000000000"),
    ("log_level", "verbose", "not one of debug, info, warning, error"),
    ("log_format", "xml", "not one of text, json"),
    *[("timezone", zone, "not a known time zone") for zone in ABSURD_ZONES],
    ("db", "", "an empty path"),
]


@pytest.mark.parametrize("origin", ["flag", "env", "file"])
@pytest.mark.parametrize(("name", "value", "why"), BAD_TEXT, ids=lambda v: str(v)[:20])
def test_bad_setting_names_setting_origin_and_reason(
    tmp_path: Path, workflows: Path, origin: str, name: str, value: str, why: str
) -> None:
    flags: dict[str, object] = {"workflows": str(workflows)}
    env: dict[str, str] = {}
    file_text = None
    if origin == "flag":
        flags[name], where = value, "--" + name.replace("_", "-")
    elif origin == "env":
        env[f"FLOWLORD_{name.upper()}"], where = value, f"FLOWLORD_{name.upper()}"
    else:
        # max_tasks as TOML would type it (inf, 1.5, 0); every other setting as a string
        literal = value if name == "max_tasks" else '"' + value.replace('"', '\\"') + '"'
        file_text, where = f"{name} = {literal}\n", str(tmp_path / "conf" / "flowlord.toml")
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, flags, env, file_text, required=("workflows",))
    message = str(caught.value)
    assert message.startswith(f"config {name!r} from {where} has value ")
    assert message.endswith(why) or f": {why}" in message
    assert "\n" not in message and len(message) < 500


def test_nul_in_a_flag_or_file(tmp_path: Path) -> None:
    """execve and the environment cannot carry a NUL; a flag given in-process and TOML can."""
    with pytest.raises(ConfigError, match=r"has value 'UTC\\x00': contains a NUL character"):
        resolve(tmp_path, {"timezone": "UTC\0"})
    with pytest.raises(ConfigError, match=r"flowlord.toml has value 'a\\x00b': contains a NUL"):
        resolve(tmp_path, file_text='db = "a\\u0000b"\n')


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("max_tasks = inf", "has value inf: not an integer"),
        ("max_tasks = nan", "has value nan: not an integer"),
        ("max_tasks = 1.5", "has value 1.5: not an integer"),
        ("max_tasks = 2.0", "has value 2.0: not an integer"),
        ("max_tasks = true", "has value true: not an integer"),
        ('max_tasks = "five"', "has value 'five': not an integer"),
        ("max_tasks = 1_000_001", "has value 1000001: must be between 1 and 1000000"),
        ("max_tasks = -1", "has value -1: must be between 1 and 1000000"),
        ("timezone = 3", "has value 3: not a string"),
        ("db = [1]", "has value [1]: not a string"),
        ("bus_dir = {a = 1}", "has value {'a': 1}: not a string"),
    ],
)
def test_bad_typed_values_in_a_file(tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=r"from .*flowlord.toml has value") as caught:
        resolve(tmp_path, file_text=text + "\n")
    assert str(caught.value).endswith(why)


def test_a_file_setting_is_checked_even_when_the_command_does_not_use_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config 'timezone' from .* has value 'Mars/Base'"):
        resolve(tmp_path, file_text='timezone = "Mars/Base"\n', uses=("log_level",))
    # the environment is read only for the settings a command uses
    assert resolve(tmp_path, env={"FLOWLORD_TIMEZONE": "Mars"}, uses=("log_level",))


def test_paths_checked_on_disk(tmp_path: Path, workflows: Path) -> None:
    (tmp_path / "plain").write_text("")
    cases = [
        ({"workflows": str(tmp_path / "nope")}, "'workflows' from --workflows", "does not exist"),
        ({"db": str(tmp_path)}, "'db' from --db", "is a folder, not a database file"),
        ({"db": str(tmp_path / "no" / "x.db")}, "'db' from --db", "does not exist"),
        ({"db": str(tmp_path / "plain" / "x.db")}, "'db' from --db", "Not a directory"),
        ({"bus_dir": str(tmp_path / "plain")}, "'bus_dir' from --bus-dir", "not a folder"),
        ({"bus_dir": str(tmp_path / "plain" / "b")}, "'bus_dir'", "cannot be created"),
    ]
    for flags, setting, why in cases:
        with pytest.raises(ConfigError, match=f"config {setting}") as caught:
            resolve(tmp_path, flags)
        assert why in str(caught.value)
    # a memory bus has no folder to check; an in-memory database has no folder either
    assert resolve(tmp_path, {"bus": "memory", "bus_dir": str(tmp_path / "plain")}).bus == "memory"
    assert resolve(tmp_path, {"db": ":memory:"}).db == ":memory:"
    assert resolve(tmp_path, file_text='db = ":memory:"\n').db == ":memory:"


def test_workflows_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config 'workflows' is not set: give --workflows"):
        resolve(tmp_path, required=("workflows",))


def test_integers_as_text(tmp_path: Path) -> None:
    assert resolve(tmp_path, {"max_tasks": " +42 "}).max_tasks == 42
    assert resolve(tmp_path, file_text='max_tasks = "42"\n').max_tasks == 42  # unambiguous
    assert resolve(tmp_path, {"max_tasks": "0001000000"}).max_tasks == 1_000_000
    for text in ("٣", "1e3", "0x10", "1_000", "", "4 2"):
        with pytest.raises(ConfigError, match="not an integer"):
            resolve(tmp_path, {"max_tasks": text})


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) 'colour', 'speed'"):
        resolve(tmp_path, file_text='speed = 1\ncolour = "red"\nbus = "file"\n')
    with pytest.raises(ConfigError, match=r"not TOML: .*at line 2"):
        resolve(tmp_path, file_text='bus = "file"\nmax_tasks = \n')
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a regular file"):
        read_config_file(str(tmp_path))
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_config_file(str(tmp_path / "fifo.toml"))  # and it does not block
    (tmp_path / "latin1.toml").write_bytes(b'bus = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_config_file(str(tmp_path / "latin1.toml"))
    for name, text in [
        ("huge.toml", "max_tasks = " + "9" * 5000),
        ("deep.toml", "a = " + "[" * 999),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match="not TOML"):
            read_config_file(str(tmp_path / name))


def test_no_file_in_the_current_folder_is_fine(tmp_path: Path) -> None:
    assert read_config_file(None) is None
    Path("flowlord.toml").write_text('bus = "memory"\n')
    found = read_config_file(None)
    assert found is not None and found.path == str(tmp_path / "flowlord.toml")


def test_a_redis_url_with_a_password_is_never_shown(tmp_path: Path) -> None:
    """The URL may carry a password: an error names the setting and its origin, not the value."""
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, env={"FLOWLORD_REDIS_URL": "http://:s3cret@host:6379"})
    message = str(caught.value)
    assert "config 'redis_url' from FLOWLORD_REDIS_URL has value (hidden)" in message
    assert "s3cret" not in message
    config = resolve(tmp_path, env={"FLOWLORD_REDIS_URL": "redis://:s3cret@host:6390/2"})
    assert config.redis_url == "redis://:s3cret@host:6390/2"
    assert "s3cret" not in repr(config)
