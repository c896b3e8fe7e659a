"""Event hooks (DESIGN §5): the events, a `[[hooks]]` entry of flowlord.toml, and who hears what.

Parsing is here, without I/O: `flowlord.config` reads the file and names it in errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

TASK_EVENTS = {"task.complete": "complete", "task.failed": "failed", "task.held": "held"}
"""Hook events of task transitions, with the `to_state` each one follows."""
CONTROL_EVENTS = ("workflow.paused", "workflow.resumed")
FILE_EVENTS = ("workflow.changed", "workflow.error")
EVENTS = (*TASK_EVENTS, *CONTROL_EVENTS, *FILE_EVENTS)
HOOK_KEYS = ("url", "events")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    """One `[[hooks]]` entry of flowlord.toml: POST these events to `url`."""

    url: str
    events: tuple[str, ...]


class HookError(ValueError):
    """A `[[hooks]]` entry that cannot be used: `part` says where (`[0].url`, `[1]` for a
    whole entry, '' for the whole setting) and `value` what is there."""

    def __init__(self, why: str, *, part: str = "", value: object = None) -> None:
        super().__init__(why)
        self.part = part
        self.value = value


def url_problem(value: str) -> str:
    """Why `value` is not an http or https URL with a host; '' when it is one."""
    if any(c.isspace() or not c.isprintable() for c in value):
        return "not a URL: contains a space or a control character"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a bad port raises only when read)
    except ValueError as err:
        return f"not a URL: {err}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http or https URL with a host (like https://hooks.example.com/x)"
    return ""


def parse_hooks(raw: object) -> tuple[Hook, ...]:
    """`[[hooks]]` tables, as TOML typed them, each with `url` and a non-empty list of
    `events`; a repeated event counts once. Raises `HookError` for the first problem."""
    if not isinstance(raw, list):
        raise HookError("not a list of [[hooks]] tables")
    return tuple(_hook(f"[{index}]", entry) for index, entry in enumerate(raw))


def _hook(where: str, entry: object) -> Hook:
    if not isinstance(entry, dict):
        raise HookError("not a table (write [[hooks]] with url and events)", part=where,
                        value=entry)  # fmt: skip
    for key in entry:
        if key not in HOOK_KEYS:
            raise HookError(f"unknown key (keys: {', '.join(HOOK_KEYS)})",
                            part=f"{where}.{key}", value=entry[key])  # fmt: skip
    for key in HOOK_KEYS:
        if key not in entry:
            raise HookError("is not set", part=f"{where}.{key}", value="")
    url, events = entry["url"], entry["events"]
    why = url_problem(url) if isinstance(url, str) else "not a string"
    if why or not url:
        raise HookError(why or "an empty URL", part=f"{where}.url", value=url)
    if not isinstance(events, list) or not events:
        raise HookError("not a non-empty list of events", part=f"{where}.events", value=events)
    for event in events:
        if event not in EVENTS:
            raise HookError(f"not an event (events: {', '.join(EVENTS)})",
                            part=f"{where}.events", value=event)  # fmt: skip
    return Hook(url=url, events=tuple(dict.fromkeys(events)))


def subscribers(hooks: Iterable[Hook]) -> dict[str, tuple[str, ...]]:
    """Each subscribed event with its URLs, each URL once (two hooks naming the same URL and
    event still make one POST per event)."""
    found: dict[str, dict[str, None]] = {}
    for hook in hooks:
        for event in hook.events:
            found.setdefault(event, {})[hook.url] = None
    return {event: tuple(urls) for event, urls in found.items()}
