"""How the taskmaster treats a phase's tasks: retries, the time to live, cron catch-up.

Retries: `retry_delay` (default 1 s) plus up to 40 % jitter; or, with `backoff=exponential`,
`retry_delay * 2^(attempt-1)` plus the jitter, never more than `max_delay` (default 24 h). The
jitter is a hash of (run id, task, attempt), not a random draw: a replay of the same done message
computes the same due time. `ttl=` is how long a sent task may go without a done before it is
stuck; `catchup=latest|none|all` is what a cron phase fires for the instants missed while
flowlord was down.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from workflow.duration import DurationError, in_go_range, parse_duration

DEFAULT_DELAY = timedelta(seconds=1)
DEFAULT_MAX_DELAY = timedelta(hours=24)
MAX_JITTER = 0.4
BACKOFFS = ("constant", "exponential")
_MAX_DOUBLINGS = 64  # 1 µs doubled 64 times is past any max_delay (at most ~2**53 µs)


CATCHUPS = ("latest", "none", "all")


class PolicyRuleError(ValueError):
    """A policy rule key with a bad value; `key` names it, `reason` says why."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(f"{key}={value} ({reason})")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait before each retry of a phase."""

    delay: timedelta = DEFAULT_DELAY
    exponential: bool = False
    max_delay: timedelta = DEFAULT_MAX_DELAY

    @classmethod
    def of(cls, rule: Mapping[str, str]) -> RetryPolicy:
        """The policy of a parsed rule; `PolicyRuleError` for a value validation refuses."""
        backoff = rule.get("backoff", "constant")
        if backoff not in BACKOFFS:
            raise PolicyRuleError("backoff", backoff, f"one of {', '.join(BACKOFFS)}")
        return cls(
            delay=_duration(rule, "retry_delay", DEFAULT_DELAY, allow_zero=True),
            exponential=backoff == "exponential",
            max_delay=_duration(rule, "max_delay", DEFAULT_MAX_DELAY, allow_zero=False),
        )

    def wait(self, attempt: int, *, run_id: str, task: str) -> timedelta:
        """The wait before retry number `attempt` (1 for the first) of `task` in run `run_id`."""
        base = self.delay
        if self.exponential:  # in whole microseconds: Python's int does not overflow
            doubled = _micros(self.delay) << min(max(attempt - 1, 0), _MAX_DOUBLINGS)
            base = timedelta(microseconds=min(doubled, _micros(self.max_delay)))
        waited = base + base * MAX_JITTER * jitter_fraction(run_id, task, attempt)
        return min(waited, self.max_delay) if self.exponential else waited


def ttl_of(rule: Mapping[str, str], default: timedelta) -> timedelta:
    """The phase's `ttl=` (a positive duration), else `default`."""
    return _duration(rule, "ttl", default, allow_zero=False)


def catchup_of(rule: Mapping[str, str]) -> str:
    """The phase's `catchup=`: `latest` (the default), `none` or `all`."""
    catchup = rule.get("catchup", "latest")
    if catchup not in CATCHUPS:
        raise PolicyRuleError("catchup", catchup, f"one of {', '.join(CATCHUPS)}")
    return catchup


def policy_problems(rule: Mapping[str, str]) -> list[PolicyRuleError]:
    """Every policy key of `rule` with a bad value, in rule-key order (for validation)."""
    checks = {
        "retry_delay": lambda: _duration(rule, "retry_delay", DEFAULT_DELAY, allow_zero=True),
        "backoff": lambda: RetryPolicy.of({"backoff": rule["backoff"]}),
        "max_delay": lambda: _duration(rule, "max_delay", DEFAULT_MAX_DELAY, allow_zero=False),
        "ttl": lambda: ttl_of(rule, DEFAULT_MAX_DELAY),
        "catchup": lambda: catchup_of(rule),
    }
    problems = []
    for key in rule:
        try:
            if key in checks:
                checks[key]()
        except PolicyRuleError as err:
            problems.append(err)
    return problems


def jitter_fraction(run_id: str, task: str, attempt: int) -> float:
    """A fraction in [0, 1) that depends only on its arguments."""
    digest = hashlib.sha256(f"{run_id}\0{task}\0{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _duration(
    rule: Mapping[str, str], key: str, default: timedelta, *, allow_zero: bool
) -> timedelta:
    if key not in rule:
        return default
    try:
        value = parse_duration(rule[key])
    except DurationError:
        raise PolicyRuleError(key, rule[key], "not a duration") from None
    if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
        raise PolicyRuleError(key, rule[key], "must be positive")
    if not in_go_range(value):
        raise PolicyRuleError(key, rule[key], "out of range")
    return value
