"""Configuration, resolved in one visible order: flag, `FLOWLORD_*` environment, `flowlord.toml`,
default.

Every bad setting is a `ConfigError` naming the setting, where its value came from (`--max-tasks`,
`FLOWLORD_MAX_TASKS`, `/srv/flowlord.toml`) and why. Paths given by a flag or the environment are
relative to the current folder; paths in a config file are relative to that file's folder.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import tomli

from cache.source import UnreadableFile, read_regular_file
from flowlord import config_values as parsers
from workflow.batch import DEFAULT_MAX_TASKS
from workflow.duration import format_duration
from workflow.hooks import Hook

BUSES = ("file", "memory", "redis")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
MAX_TASKS_LIMIT = 1_000_000
MAX_CONFIG_BYTES = 1024 * 1024
DEFAULT_CONFIG_FILE = "flowlord.toml"


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it, where it came from and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Everything `flowlord run` and its workers need; see `SETTINGS` for each setting."""

    workflows: str = ""
    db: str = "flowlord.db"
    bus: str = "file"
    bus_dir: str = "bus"
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    redis_claim_idle: timedelta = timedelta(minutes=1)
    redis_max_len: int = 1_000_000
    timezone: str = "UTC"
    done_topic: str = "done"
    failed_topic: str = "retry-failed"
    files_topic: str = "files"
    max_tasks: int = DEFAULT_MAX_TASKS
    task_ttl: timedelta = timedelta(hours=4)
    retention_days: int = 90
    lease: timedelta = timedelta(seconds=10)
    log_level: str = "info"
    log_format: str = "text"
    paused_at_creation: bool = False
    alert_webhook: str = ""
    alert_min_interval: timedelta = timedelta(minutes=1)
    alert_max_interval: timedelta = timedelta(hours=1)
    hooks: tuple[Hook, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: str = field(default="", repr=False)
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Where each resolved setting came from (`--db`, `FLOWLORD_DB`, a file); none: default."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def error(self, name: str, why: str) -> ConfigError:
        """A `ConfigError` about setting `name`, naming where its value came from."""
        origin = self.origins.get(name, "the default")
        value = _shown(getattr(self, name), secret=SETTINGS[name].secret)
        return ConfigError(f"config {name!r} from {origin} has value {value}: {why}")


@dataclass(frozen=True, slots=True)
class Setting:
    """How one setting is parsed and shown in `--help`.

    A `file_only` setting (a table, like `[[hooks]]`) has no flag and no environment variable:
    it is read from flowlord.toml only.
    """

    parse: Callable[[object], object]
    help: str
    metavar: str = "VALUE"
    is_path: bool = False
    file_only: bool = False
    secret: bool = False
    """Never shown: an error names the setting and where it came from, not its value."""


SETTINGS: dict[str, Setting] = {
    "workflows": Setting(parsers.path, "workflow folder or file", "PATH", is_path=True),
    "db": Setting(parsers.path, "database file (default flowlord.db)", "FILE", is_path=True),
    "bus": Setting(parsers.choice(*BUSES), "file, memory or redis (default file)", "KIND"),
    "bus_dir": Setting(parsers.path, "file bus folder (default bus)", "DIR", is_path=True),
    "redis_url": Setting(
        parsers.redis_url,
        "Redis for --bus redis: redis://[:password@]host[:port][/db], rediss:// or "
        "unix:///path.sock (default redis://127.0.0.1:6379/0)",
        "URL",
        secret=True,
    ),
    "redis_claim_idle": Setting(
        parsers.duration(timedelta(milliseconds=10), timedelta(days=1)),
        "a message a dead consumer left unacked this long is taken over (default 1m)",
        "DURATION",
    ),
    "redis_max_len": Setting(
        parsers.integer(1000, 1_000_000_000),
        "entries a topic's stream keeps at most, read or not (default 1000000)",
        "N",
    ),
    "timezone": Setting(parsers.zone, "time zone of cron rules (default UTC)", "ZONE"),
    "done_topic": Setting(parsers.topic(), "topic of done tasks (default done)", "TOPIC"),
    "failed_topic": Setting(
        parsers.topic(may_disable=True), "- for none (default retry-failed)", "TOPIC"
    ),
    "files_topic": Setting(parsers.topic(), "topic of file messages (default files)", "TOPIC"),
    "max_tasks": Setting(
        parsers.integer(1, MAX_TASKS_LIMIT), "most tasks of one batch rule (1 to 1000000)", "N"
    ),
    "task_ttl": Setting(
        parsers.duration(timedelta(seconds=1), timedelta(days=365)),
        "a sent task with no done this long is stuck (default 4h; rule ttl= per phase)",
        "DURATION",
    ),
    "retention_days": Setting(
        parsers.integer(0, 36_500),
        "days task records and alerts are kept (default 90; 0: all)",
        "DAYS",
    ),
    "lease": Setting(
        parsers.duration(timedelta(seconds=1), timedelta(hours=1)),
        "the leader lease: a standby takes over this long after the leader dies (default 10s)",
        "DURATION",
    ),
    "paused_at_creation": Setting(
        parsers.boolean,
        "pause each workflow file flowlord has never seen (default false)",
        "BOOL",
    ),
    "alert_webhook": Setting(
        parsers.url,
        'POST alerts here as {"text": ...}, for Slack and most chat tools (default none)',
        "URL",
    ),
    "alert_min_interval": Setting(
        parsers.duration(timedelta(seconds=1), timedelta(days=1)),
        "while alerts keep coming, one summary per interval, starting at this (default 1m)",
        "DURATION",
    ),
    "alert_max_interval": Setting(
        parsers.duration(timedelta(seconds=1), timedelta(days=1)),
        "the summary interval doubles up to this (default 1h)",
        "DURATION",
    ),
    "hooks": Setting(
        parsers.hooks, "[[hooks]] tables in flowlord.toml: url and events", "TABLES", file_only=True
    ),
    "host": Setting(parsers.host, "address the HTTP API listens on (default 127.0.0.1)", "HOST"),
    "port": Setting(
        parsers.integer(0, 65535), "HTTP API port; 0 for no API (default 8080)", "PORT"
    ),
    "admin_token": Setting(
        parsers.token,
        "bearer token for API writes; better from FLOWLORD_ADMIN_TOKEN (default none: read-only)",
        "TOKEN",
        secret=True,
    ),
    "log_level": Setting(parsers.choice(*LOG_LEVELS), "debug, info, warning or error", "LEVEL"),
    "log_format": Setting(parsers.choice(*LOG_FORMATS), "text or json (default text)", "FORMAT"),
}


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return f"FLOWLORD_{name.upper()}"


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The settings of one `flowlord.toml`, as TOML typed them; `path` names it in errors."""

    path: str
    values: Mapping[str, object]


def read_config_file(given: str | None) -> ConfigFile | None:
    """The file named by `--config`, else `./flowlord.toml` if there is one, else None."""
    path = given if given is not None else DEFAULT_CONFIG_FILE
    shown = os.path.abspath(path) if "\0" not in path else repr(path)
    where = f"config file {shown}"
    if "\0" in path:
        raise ConfigError(f"{where}: cannot be read: the path contains a NUL character")
    if given is None and not os.path.lexists(path):
        return None
    if not os.path.lexists(path):
        raise ConfigError(f"{where} (from --config) does not exist")
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES)  # a FIFO never blocks us
    except UnreadableFile as err:
        raise ConfigError(f"{where}: {err}") from None
    try:
        values = tomli.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{where}: not UTF-8 (byte {err.start})") from None
    except (ValueError, RecursionError) as err:  # tomli raises ValueError for huge integers
        raise ConfigError(f"{where}: not TOML: {err}") from None
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(SETTINGS)}"
        )
    return ConfigFile(path=shown, values=values)


def resolve_config(
    flags: Mapping[str, object],
    env: Mapping[str, str],
    file: ConfigFile | None,
    *,
    uses: Collection[str] = tuple(SETTINGS),
    required: Collection[str] = (),
) -> RunConfig:
    """Each setting a command `uses` from the first place that has it: flag, environment, file,
    default. Every setting in the file is checked too, so a mistake shows whichever command
    reads it. Then the paths are checked on disk (a missing bus folder is created)."""
    file_values = file.values if file else {}
    values: dict[str, object] = {}
    origins: dict[str, str] = {}
    for name in [n for n in SETTINGS if n in uses or n in file_values]:
        found = _lookup(name, flags, env, file)
        if found is None:
            continue
        raw, origin, base = found
        try:
            value = SETTINGS[name].parse(raw)
        except parsers.Invalid as why:
            shown = _shown(why.value if why.part else raw, secret=SETTINGS[name].secret)
            raise ConfigError(
                f"config {name + why.part!r} from {origin} has value {shown}: {why}"
            ) from None
        if SETTINGS[name].is_path and base and value != ":memory:":
            value = os.path.join(base, str(value))
        if name in uses:
            values[name], origins[name] = value, origin
    for name in required:
        if name not in values:
            raise ConfigError(
                f"config {name!r} is not set: give {flag_name(name)}, {env_name(name)} "
                f"or {name} in {DEFAULT_CONFIG_FILE}"
            )
    config = RunConfig(**values, origins=origins)  # type: ignore[arg-type]
    _check(config, uses)
    return config


def _lookup(
    name: str, flags: Mapping[str, object], env: Mapping[str, str], file: ConfigFile | None
) -> tuple[object, str, str] | None:
    """The raw value, where it came from, and the folder its relative paths start from."""
    if SETTINGS[name].file_only and (flags.get(name) is not None or env_name(name) in env):
        given = flag_name(name) if flags.get(name) is not None else env_name(name)
        raise ConfigError(f"config {name!r} from {given}: can only be set in {DEFAULT_CONFIG_FILE}")
    if flags.get(name) is not None:
        return flags[name], flag_name(name), ""
    if env_name(name) in env:
        return env[env_name(name)], env_name(name), ""
    if file is not None and name in file.values:
        return file.values[name], file.path, os.path.dirname(file.path)
    return None


def _shown(raw: object, *, secret: bool = False) -> str:
    """A value as it appears in a message: on one line, and not too long; a secret hidden."""
    if secret:
        return "(hidden)"
    if isinstance(raw, bool):
        return str(raw).lower()
    text = repr(raw)
    return text if len(text) <= 200 else f"{text[:150]}... ({len(text)} characters)"


def _check(config: RunConfig, uses: Collection[str]) -> None:
    """Checks between settings, and of the paths on disk, for the settings a command uses."""
    topics = [name for name in ("done_topic", "failed_topic", "files_topic") if name in uses]
    for index, name in enumerate(topics):
        for earlier in topics[:index]:
            if getattr(config, name) == getattr(config, earlier):
                origin = config.origins.get(earlier, "the default")
                raise config.error(name, f"the same topic as {earlier!r} from {origin}")
    if {"alert_min_interval", "alert_max_interval"} <= set(uses):
        low, high = config.alert_min_interval, config.alert_max_interval
        if high < low:
            low_from, high_from = (
                config.origins.get(name, "the default")
                for name in ("alert_min_interval", "alert_max_interval")
            )
            raise ConfigError(
                f"config 'alert_max_interval' from {high_from} has value "
                f"{format_duration(high)!r}: less than 'alert_min_interval' "
                f"{format_duration(low)!r} from {low_from}"
            )
    _check_exposure(config, uses)
    checks = {"workflows": _workflows_problem, "db": _db_problem}
    if config.bus == "file":
        checks["bus_dir"] = _bus_dir_problem
    for name, problem in checks.items():
        value = getattr(config, name)
        why = problem(value) if name in uses and value else ""
        if why:
            raise config.error(name, why)


def _check_exposure(config: RunConfig, uses: Collection[str]) -> None:
    """The API beyond this machine only with an admin token (DESIGN §6)."""
    served = {"host", "port", "admin_token"} <= set(uses) and config.port
    if served and not config.admin_token and not is_loopback(config.host):
        raise config.error(
            "host",
            "not a loopback address, and no admin_token is set: set FLOWLORD_ADMIN_TOKEN "
            "(or admin_token) before serving the API beyond this machine",
        )


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches: 127.0.0.0/8, ::1, `localhost`."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _workflows_problem(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        return "does not exist" if isinstance(err, FileNotFoundError) else str(err.strerror)
    return "" if stat.S_ISDIR(mode) or stat.S_ISREG(mode) else "neither a folder nor a file"


def _db_problem(path: str) -> str:
    if path == ":memory:":
        return ""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        folder = os.path.dirname(os.path.abspath(path))
        return "" if os.path.isdir(folder) else f"its folder {folder!r} does not exist"
    except OSError as err:
        return str(err.strerror)
    if stat.S_ISDIR(mode):
        return "is a folder, not a database file"
    return "" if stat.S_ISREG(mode) else "not a regular file"


def _bus_dir_problem(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        return "exists and is not a folder"
    except OSError as err:
        return f"cannot be created: {err.strerror}"
    return ""
