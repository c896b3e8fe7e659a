"""How each setting's value is read: a parser per kind (path, choice, integer, duration, topic,
zone, URL, host, token, hooks), raising `Invalid` with why; `flowlord.config` adds the setting's
name and where the value came from."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import available_timezones

from flowlord.bus import check_topic
from workflow.duration import DurationError, format_duration, parse_duration
from workflow.hooks import Hook, HookError, parse_hooks, url_problem

DISABLED = "-"
MIN_TOKEN_LENGTH = 16


class Invalid(Exception):
    """Why a value is refused; `resolve_config` adds the setting's name and origin.

    A setting made of parts (`hooks`) names the part at fault in `part` (`[0].url`) and shows
    that part's `value` instead of the whole setting's.
    """

    def __init__(self, why: str, *, part: str = "", value: object = None) -> None:
        super().__init__(why)
        self.part = part
        self.value = value


def text(raw: object) -> str:
    if not isinstance(raw, str):
        raise Invalid("not a string")
    if "\0" in raw:
        raise Invalid("contains a NUL character")
    return raw


def path(raw: object) -> str:
    if not text(raw):
        raise Invalid("an empty path")
    return str(raw)


def choice(*choices: str) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        value = text(raw).lower()
        if value not in choices:
            raise Invalid(f"not one of {', '.join(choices)}")
        return value

    return parse


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def boolean(raw: object) -> bool:
    """TOML's true and false; from a flag or the environment true/false, yes/no, on/off, 1/0."""
    if isinstance(raw, bool):
        return raw
    value = text(raw).strip().lower()
    if value not in _TRUE + _FALSE:
        raise Invalid("not true or false")
    return value in _TRUE


_INTEGER = re.compile(r"[+-]?[0-9]+")


def integer(low: int, high: int) -> Callable[[object], int]:
    def parse(raw: object) -> int:
        if isinstance(raw, str):
            text = raw.strip()
            if not _INTEGER.fullmatch(text):
                raise Invalid("not an integer")
            # int() of thousands of digits is slow, then refused: this long is out of range.
            value = int(text) if len(text.lstrip("+-").lstrip("0")) <= 12 else high + 1
        elif isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            raise Invalid("not an integer")
        if not low <= value <= high:
            raise Invalid(f"must be between {low} and {high}")
        return value

    return parse


def duration(low: timedelta, high: timedelta) -> Callable[[object], timedelta]:
    """A Go duration (`4h`, `90s`) from low to high."""

    def parse(raw: object) -> timedelta:
        try:
            value = parse_duration(text(raw).strip())
        except DurationError:
            raise Invalid("not a duration (like 90s, 10m or 4h)") from None
        if not low <= value <= high:
            raise Invalid(f"must be between {format_duration(low)} and {format_duration(high)}")
        return value

    return parse


def topic(*, may_disable: bool = False) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        value = text(raw)
        if value == DISABLED:
            if may_disable:
                return value
            raise Invalid(f"not a topic: {DISABLED!r} (none) is only for failed_topic")
        try:
            return check_topic(value)
        except ValueError:
            hint = f", or {DISABLED!r} to disable it" if may_disable else ""
            raise Invalid(
                f"not a topic: use [A-Za-z0-9_.-]+, not starting with '.'{hint}"
            ) from None

    return parse


def zone(raw: object) -> str:
    """Only a name `available_timezones()` lists: never a path ZoneInfo would try to open."""
    value = text(raw)
    if value not in available_timezones():
        raise Invalid("not a known time zone (an IANA name such as UTC or Europe/Paris)")
    return value


def url(raw: object) -> str:
    """An http or https URL with a host; empty for none."""
    value = text(raw).strip()
    if value and (why := url_problem(value)):
        raise Invalid(why)
    return value


REDIS_SCHEMES = ("redis", "rediss", "unix")


def redis_url(raw: object) -> str:
    """A Redis URL redis-py takes: redis://, rediss:// (TLS) with a host, or unix:// with a
    socket path. Never shown in errors: it may carry a password."""
    value = text(raw).strip()
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in REDIS_SCHEMES:
        raise Invalid(f"not a Redis URL: use {', '.join(s + '://' for s in REDIS_SCHEMES)}")
    where = rest.split("?", 1)[0].rpartition("@")[2]
    if not where.strip("/"):
        raise Invalid("a Redis URL needs a host (or, for unix://, a socket path)")
    return value


def host(raw: object) -> str:
    """An address to listen on: an IP address or a host name, without a port."""
    value = text(raw).strip()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOST_NAME.fullmatch(value):
            raise Invalid(
                "not an IP address or host name (like 127.0.0.1, 0.0.0.0 or ::1)"
            ) from None
    return value


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


def token(raw: object) -> str:
    """The admin token: printable ASCII without spaces, long enough not to be guessed."""
    value = text(raw).strip()
    if value and (len(value) < MIN_TOKEN_LENGTH or not value.isascii() or not value.isprintable()
                  or " " in value):  # fmt: skip
        raise Invalid(
            f"use at least {MIN_TOKEN_LENGTH} printable ASCII characters without spaces "
            "(python -c 'import secrets; print(secrets.token_urlsafe())' makes one)"
        )
    return value


def hooks(raw: object) -> tuple[Hook, ...]:
    try:
        return parse_hooks(raw)
    except HookError as err:
        raise Invalid(str(err), part=err.part, value=err.value) from None
