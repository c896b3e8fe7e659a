"""URL-query parsing for rules and task meta (`cron=0 * * * *&offset=-1h`)."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, unquote_plus


def parse_query(query: str) -> dict[str, str]:
    """Parse `k=v&k2=v2` like Go's `url.ParseQuery`, keeping the first value of a repeated key.

    Parts without `=` are skipped here; `invalid_parts` reports them. The caller owns the
    dict it gets (a copy of a memoized parse: one task's meta is read many times while it is
    resolved, and rules repeat).
    """
    return dict(_parsed(query)) if query else {}


@lru_cache(maxsize=4096)
def _parsed(query: str) -> tuple[tuple[str, str], ...]:
    values: dict[str, str] = {}
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if not eq:
            continue
        key = unquote_plus(key) if "%" in key or "+" in key else key
        if key not in values:
            values[key] = unquote_plus(value) if "%" in value or "+" in value else value
    return tuple(values.items())


def invalid_parts(query: str) -> list[str]:
    """The non-empty `&`-separated parts that lack `=`: a rule with any is "not a query"."""
    return [part for part in query.split("&") if part and "=" not in part]


def encode_query(values: dict[str, str]) -> str:
    """Encode `values` as `k=v&...`, escaping only what would break parsing."""
    return "&".join(f"{_escaped(k)}={_escaped(v)}" for k, v in values.items())


_SAFE = ":/*,|@ "
_PLAIN = re.compile(rf"[A-Za-z0-9_.~{re.escape(_SAFE)}-]*")


def _escaped(text: str) -> str:
    """`quote(text)` with our safe characters; most meta needs none, and a match is cheaper."""
    return text if _PLAIN.fullmatch(text) else quote(text, safe=_SAFE)
