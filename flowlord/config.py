"""Configuration, resolved in one visible order: flag, `FLOWLORD_*` environment, `flowlord.toml`,
default."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli

from workflow.batch import DEFAULT_MAX_TASKS

BUSES = ("file", "memory")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it, its value and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Everything `flowlord run` needs; see the README for each setting."""

    workflows: str = ""
    db: str = "flowlord.db"
    bus: str = "file"
    bus_dir: str = "bus"
    timezone: str = "UTC"
    done_topic: str = "done"
    failed_topic: str = "retry-failed"
    files_topic: str = "files"
    max_tasks: int = DEFAULT_MAX_TASKS

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def resolve_config(
    flags: Mapping[str, object], env: Mapping[str, str], config_file: str | None
) -> RunConfig:
    """Each setting from the first place that has it: flag, environment, file, default."""
    from_file = _read_file(config_file)
    values: dict[str, object] = {}
    for setting in dataclasses.fields(RunConfig):
        name = setting.name
        raw = flags.get(name)
        if raw is None:
            raw = env.get(f"FLOWLORD_{name.upper()}")
        if raw is None:
            raw = from_file.get(name)
        if raw is not None:
            values[name] = _typed(name, raw, setting.type)
    config = RunConfig(**values)
    _check(config)
    return config


def _read_file(config_file: str | None) -> dict[str, object]:
    path = Path(config_file or "flowlord.toml")
    if not path.exists():
        if config_file:
            raise ConfigError(f"config file {config_file!r} does not exist")
        return {}
    try:
        document = tomli.loads(path.read_text("utf-8"))
    except (tomli.TOMLDecodeError, UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"config file {str(path)!r}: {err}") from None
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ConfigError(f"config file {str(path)!r}: unknown setting(s) {', '.join(unknown)}")
    return document


def _typed(name: str, raw: object, kind: object) -> object:
    if kind in (int, "int"):
        if isinstance(raw, bool):
            raise ConfigError(f"config {name!r} has value {raw!r}: not an integer")
        try:
            return int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ConfigError(f"config {name!r} has value {raw!r}: not an integer") from None
    if not isinstance(raw, str):
        raise ConfigError(f"config {name!r} has value {raw!r}: not a string")
    return raw


def _check(config: RunConfig) -> None:
    if not config.workflows:
        raise ConfigError("config 'workflows' is not set: give --workflows DIR")
    if config.bus not in BUSES:
        raise ConfigError(f"config 'bus' has value {config.bus!r}: not one of {', '.join(BUSES)}")
    if config.max_tasks < 1:
        raise ConfigError(f"config 'max_tasks' has value {config.max_tasks}: must be at least 1")
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"config 'timezone' has value {config.timezone!r}: not a known time zone"
        ) from None
