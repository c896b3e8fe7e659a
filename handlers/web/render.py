"""Templates and the values every page shows: times in the configured zone, the signed-in
session, who leads. One Jinja environment per app, autoescaping everything; a template that
names a value it was not given fails (StrictUndefined) instead of printing nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from flowlord import version
from handlers.web.views import tone

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
"""Every page: scripts from this server only, never framed (a toggle must not be clicked
through another site's frame), no caching of pages that show live state."""


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda text: quote(str(text), safe="/")
    env.globals["query"] = lambda **values: urlencode({k: v for k, v in values.items() if v})
    env.globals["version"] = version()
    env.globals["tone"] = tone
    return env


@dataclass(frozen=True, slots=True)
class Clock:
    """Times as people read them: in the zone cron rules use, and how long ago or ahead."""

    zone: tzinfo
    now: datetime

    def when(self, moment: datetime | None, *, seconds: bool = False) -> str:
        """`2026-11-22 06:00` in the zone; "—" for none."""
        if moment is None:
            return "—"
        local = _aware(moment).astimezone(self.zone)
        return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def iso(self, moment: datetime | None) -> str:
        """RFC 3339 in UTC, for a tooltip and for machines reading the page."""
        return _aware(moment).astimezone(UTC).isoformat() if moment else ""

    def ago(self, moment: datetime | None) -> str:
        """`3 min ago`, `in 2 h`: the distance from now, roughly."""
        if moment is None:
            return ""
        seconds = (_aware(moment) - _aware(self.now)).total_seconds()
        text = _span(abs(seconds))
        if text == "now":
            return "just now"
        return f"in {text}" if seconds > 0 else f"{text} ago"

    def span(self, start: datetime | None, end: datetime | None) -> str:
        """How long from `start` to `end` (`1 min 5 s`), "" unless both are known."""
        if start is None or end is None:
            return ""
        return _span((_aware(end) - _aware(start)).total_seconds(), fine=True)


def _span(seconds: float, *, fine: bool = False) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if fine else "now"
    units = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
    parts = []
    for size, unit in units:
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{int(count)} {unit}")
        if len(parts) == 2 or (parts and not fine):
            break
    return " ".join(parts)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def html(env: Environment, template: str, values: dict[str, object], status: int = 200,
         *, headers: dict[str, str] | None = None) -> HTMLResponse:  # fmt: skip
    """A page: the template rendered with `values`, with the page headers."""
    body = env.get_template(template).render(values)
    return HTMLResponse(body, status, headers={**HEADERS, **(headers or {})})
