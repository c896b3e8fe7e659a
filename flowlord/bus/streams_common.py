"""What the Redis Streams producer and consumer share: key names, entry decoding, outage
bookkeeping, and the Lua scripts that must run atomically on the server."""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from flowlord.bus.base import Message

logger = logging.getLogger("flowlord.bus.redis")

PREFIX = "flowlord:"
OUTAGES = (redis.ConnectionError, redis.TimeoutError)
"""What an unreachable or restarting Redis raises (`BusyLoadingError`, Redis loading its AOF,
is a `ConnectionError`)."""
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 10.0
"""Seconds a command may take before the server counts as lost."""


def connection_options(socket_timeout: float) -> dict[str, object]:
    """Options of every connection: a short connect timeout, and no retries inside redis-py
    (an outage is handled once, by the caller, with backoff; redis-py reconnects on the next
    command), and RESP2 replies."""
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "protocol": 2,
    }


def stream_key(topic: str) -> str:
    return PREFIX + topic


def message_of(topic: str, entry: bytes, fields: list[bytes] | None) -> Message:
    """The message of a stream entry. An entry without a `body` field (written by hand or by
    another program) has body "", which readers report as a bad message and ack."""
    ident = entry.decode()
    ms, _, seq = ident.partition("-")
    pairs = dict(zip(fields[::2], fields[1::2], strict=True)) if fields else {}
    body = pairs.get(b"body", b"").decode(errors="replace")
    return Message(topic, body, int(ms) * 1_000_000 + int(seq), ident)


def reason(err: BaseException) -> str:
    """The cause of a connection error in a few words ("Connection refused"), for one-line
    messages: redis-py's own text repeats the address."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(err).rstrip(".") or type(err).__name__


class Outage:
    """Whether Redis is down for one bus (its producers and consumers alike), and for how
    long to leave it be.

    The first failure is logged once (WARNING) and the recovery once (INFO); between them
    `holding` says whether the backoff window (0.1 s doubling to 5 s) still runs, so callers
    fail or wait without touching the network on every call. Thread-safe.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self._lock = threading.Lock()
        self._since: float | None = None
        self._delay = 0.0
        self._until = 0.0
        self.cause = ""

    def failed(self, err: BaseException) -> float:
        """Record a failure; returns how long to wait before trying again."""
        now = time.monotonic()
        with self._lock:
            self.cause = reason(err)
            if self._since is None:
                self._since, self._delay = now, FIRST_BACKOFF
                logger.warning(
                    "lost Redis at %s: %s; retrying with backoff", self.where, self.cause
                )
            else:
                self._delay = min(self._delay * 2, MAX_BACKOFF)
            self._until = now + self._delay
            return self._delay

    def succeeded(self) -> None:
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is not None:
                down = time.monotonic() - self._since
                self._since = None
                logger.info("reconnected to Redis at %s after %.1f s", self.where, down)

    def holding(self) -> bool:
        """True while an outage's backoff window runs: don't try the network yet."""
        with self._lock:
            return self._since is not None and time.monotonic() < self._until


REOWN = """
-- KEYS[1] a stream; ARGV: group, consumer, idle ms, entry IDs. Sets the idle time of each
-- entry the consumer still owns (XCLAIM to itself); never takes one back from another
-- consumer. Returns {taken: {id, owner, ...}, gone: {id, ...}} (gone: no longer pending,
-- or the group is missing).
local taken, gone = {}, {}
for i = 4, #ARGV do
  local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  local entry = pending['err'] == nil and pending[1] or nil
  if entry == nil then
    table.insert(gone, ARGV[i])
  elseif entry[2] ~= ARGV[2] then
    table.insert(taken, ARGV[i])
    table.insert(taken, entry[2])
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
  end
end
return {taken, gone}
"""

FORGET = """
-- KEYS[1] a stream; ARGV: group, idle ms. Deletes the group's consumers that hold nothing
-- and were idle longer than that; atomic, so one that just received is never deleted.
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if consumers['err'] ~= nil then
  return {}  -- no stream or no group: the read that follows re-creates it
end
local deleted = {}
for _, consumer in ipairs(consumers) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  if info['pending'] == 0 and info['idle'] > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    table.insert(deleted, info['name'])
  end
end
return deleted
"""

TRIM = """
-- KEYS[1] a stream. Trims (MINID ~) what every group has finished: entries before each
-- group's oldest pending entry, or up to its last delivered one when none is pending.
-- A stream without groups is left alone. Returns {entries trimmed, length after}.
local floor_ms, floor_seq, floor
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local id, step = info['last-delivered-id'], 1
  if info['pending'] > 0 then
    id, step = redis.call('XPENDING', KEYS[1], info['name'])[2], 0
  end
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  seq = tonumber(seq) + step
  if floor == nil or tonumber(ms) < floor_ms or (tonumber(ms) == floor_ms and seq < floor_seq) then
    floor_ms, floor_seq, floor = tonumber(ms), seq, ms .. '-' .. string.format('%d', seq)
  end
end
local trimmed = 0
if floor ~= nil then
  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', '~', floor)
end
return {trimmed, redis.call('XLEN', KEYS[1])}
"""
