"""URL-query parsing for rules and task meta (`cron=0 * * * *&offset=-1h`)."""

from __future__ import annotations

from urllib.parse import quote, unquote_plus


def parse_query(query: str) -> dict[str, str]:
    """Parse `k=v&k2=v2` like Go's `url.ParseQuery`, keeping the first value of a repeated key.

    Parts without `=` are skipped here; `invalid_parts` reports them.
    """
    values: dict[str, str] = {}
    if not query:
        return values
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if not eq:
            continue
        key = unquote_plus(key) if "%" in key or "+" in key else key
        if key not in values:
            values[key] = unquote_plus(value) if "%" in value or "+" in value else value
    return values


def invalid_parts(query: str) -> list[str]:
    """The non-empty `&`-separated parts that lack `=`: a rule with any is "not a query"."""
    return [part for part in query.split("&") if part and "=" not in part]


def encode_query(values: dict[str, str]) -> str:
    """Encode `values` as `k=v&...`, escaping only what would break parsing."""
    return "&".join(
        f"{quote(k, safe=':/*,|@ ')}={quote(v, safe=':/*,|@ ')}" for k, v in values.items()
    )
