"""Notification settings: `alert_webhook`, the summary intervals, and `[[hooks]]` (file only)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from flowlord.config import SETTINGS, ConfigError, RunConfig, read_config_file, resolve_config
from workflow.hooks import EVENTS, Hook

pytestmark = pytest.mark.usefixtures("cli_home")


def resolve(
    tmp_path: Path,
    file_text: str | None = None,
    flags: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
) -> RunConfig:
    file = None
    if file_text is not None:
        (tmp_path / "flowlord.toml").write_text(file_text)
        file = read_config_file(str(tmp_path / "flowlord.toml"))
    return resolve_config(flags or {}, env or {}, file)


def test_defaults_notify_nobody(tmp_path: Path) -> None:
    config = resolve(tmp_path)
    assert (config.alert_webhook, config.hooks) == ("", ())
    assert (config.alert_min_interval, config.alert_max_interval) == (
        timedelta(minutes=1), timedelta(hours=1),
    )  # fmt: skip


def test_settings_from_flag_env_and_file(tmp_path: Path) -> None:
    text = """
alert_webhook = "https://hooks.example.com/services/T1/B2/x"
alert_min_interval = "30s"

[[hooks]]
url = "http://127.0.0.1:9000/events"
events = ["task.failed", "workflow.paused", "task.failed"]

[[hooks]]
url = "https://ops.example.com/flowlord?team=data"
events = ["workflow.error"]
"""
    config = resolve(tmp_path, text, env={"FLOWLORD_ALERT_MAX_INTERVAL": "2h"})
    assert config.alert_webhook == "https://hooks.example.com/services/T1/B2/x"
    assert config.alert_min_interval == timedelta(seconds=30)
    assert config.alert_max_interval == timedelta(hours=2)
    assert config.hooks == (
        Hook(url="http://127.0.0.1:9000/events", events=("task.failed", "workflow.paused")),
        Hook(url="https://ops.example.com/flowlord?team=data", events=("workflow.error",)),
    )
    assert config.origins["hooks"] == str(tmp_path / "flowlord.toml")
    flagged = resolve(tmp_path, text, flags={"alert_webhook": ""})
    assert flagged.alert_webhook == ""  # empty: no webhook, whatever the file says


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ftp://example.com/x", "not an http or https URL with a host"),
        ("https://", "not an http or https URL with a host"),
        ("hooks.slack.com/services/x", "not an http or https URL with a host"),
        ("http://example.com:99999/", "not a URL: Port out of range"),
        ("http://exa mple.com/", "not a URL: contains a space or a control character"),
    ],
)
def test_a_bad_webhook_names_setting_origin_and_value(tmp_path: Path, value: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, flags={"alert_webhook": value})
    prefix = f"config 'alert_webhook' from --alert-webhook has value {value!r}: "
    assert str(caught.value).startswith(prefix + why)


def test_max_interval_below_min_names_both(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, 'alert_min_interval = "10m"\n', flags={"alert_max_interval": "5m"})
    assert str(caught.value) == (
        "config 'alert_max_interval' from --alert-max-interval has value '5m0s': less than "
        f"'alert_min_interval' '10m0s' from {tmp_path / 'flowlord.toml'}"
    )
    with pytest.raises(ConfigError, match=r"'alert_min_interval' .* must be between 1s and 24h"):
        resolve(tmp_path, 'alert_min_interval = "0s"\n')


HOOK = '[[hooks]]\nurl = "http://localhost/h"\nevents = ["task.held"]\n'


@pytest.mark.parametrize(
    ("text", "name", "shown", "why"),
    [
        (HOOK + 'secret = "x"\n', "hooks[0].secret", "'x'", "unknown key (keys: url, events)"),
        (HOOK + HOOK.replace('"task.held"', '"task.done"'), "hooks[1].events", "'task.done'",
         f"not an event (events: {', '.join(EVENTS)})"),
        ('[[hooks]]\nurl = "http://h/"\nevents = []\n', "hooks[0].events", "[]",
         "not a non-empty list of events"),
        ('[[hooks]]\nurl = "http://h/"\nevents = "task.held"\n', "hooks[0].events",
         "'task.held'", "not a non-empty list of events"),
        ('[[hooks]]\nevents = ["task.held"]\n', "hooks[0].url", "''", "is not set"),
        (HOOK.replace("http://localhost/h", "mailto:ops@example.com"), "hooks[0].url",
         "'mailto:ops@example.com'", "not an http or https URL with a host"),
        ('[[hooks]]\nurl = 5\nevents = ["task.held"]\n', "hooks[0].url", "5", "not a string"),
        ('hooks = ["http://h/"]\n', "hooks[0]", "'http://h/'", "not a table"),
        ('hooks = "http://h/"\n', "hooks", "'http://h/'", "not a list of [[hooks]] tables"),
    ],
)  # fmt: skip
def test_a_bad_hook_names_the_entry_field_file_and_value(
    tmp_path: Path, text: str, name: str, shown: str, why: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, text)
    message = str(caught.value)
    assert message.startswith(
        f"config {name!r} from {tmp_path / 'flowlord.toml'} has value {shown}: {why}"
    )


def test_hooks_come_from_the_file_only(tmp_path: Path) -> None:
    assert SETTINGS["hooks"].file_only
    assert not any(SETTINGS[name].file_only for name in SETTINGS if name != "hooks")
    with pytest.raises(ConfigError, match="'hooks' from FLOWLORD_HOOKS: can only be set in"):
        resolve(tmp_path, env={"FLOWLORD_HOOKS": "x"})
    with pytest.raises(ConfigError, match="'hooks' from --hooks: can only be set in flowlord"):
        resolve(tmp_path, flags={"hooks": "x"})
