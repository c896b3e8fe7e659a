"""Dashboard sessions: who signed in with the admin token, until when, and the CSRF token
their forms must carry (DESIGN §7).

A session is a cookie the server signs and nobody else can make: `<payload>.<HMAC-SHA256>`,
the key derived from the admin token. So a session outlives a restart of `flowlord run`, and
changing the token ends every session at once; nothing is stored. The payload holds the
expiry, the CSRF token of this session and the name given at sign-in (for the audit).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

COOKIE = "flowlord_session"
LOGIN_COOKIE = "flowlord_login"
"""Holds the CSRF token of the sign-in form itself (a double-submit: the form and the cookie
must carry the same value), so no other site can sign a browser in."""
LIFETIME = timedelta(hours=12)
MAX_NAME = 64
_PURPOSE = b"flowlord web session v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A signed-in browser: its CSRF token, who it said it is, and when it must sign in again."""

    csrf: str
    name: str
    expires: datetime

    def actor(self, client: str) -> str:
        """Who acts, for the task and control audit: `alice@web`, or `web@<address>`."""
        return f"{self.name}@web" if self.name else f"web@{client}"


def name_problem(name: str) -> str:
    """Why `name` cannot name who signed in ("" when it can): one short printable line."""
    if len(name) > MAX_NAME:
        return f"at most {MAX_NAME} characters"
    if not name.isprintable():
        return "one line of printable text"
    return ""


class Sessions:
    """Issues and reads session cookies under a key derived from `admin_token` (which must not
    be empty: with no token, nobody signs in)."""

    def __init__(self, admin_token: str, *, lifetime: timedelta = LIFETIME) -> None:
        if not admin_token:
            raise ValueError("sessions need an admin token")
        self._token = admin_token.encode()
        self._key = hmac.new(self._token, _PURPOSE, hashlib.sha256).digest()
        self.lifetime = lifetime

    def token_matches(self, given: str) -> bool:
        """The admin token, compared in constant time."""
        return hmac.compare_digest(given.strip().encode(), self._token)

    def issue(self, *, name: str, now: datetime) -> tuple[str, Session]:
        """A new session for `name` from `now`: the cookie value and what it holds."""
        session = Session(csrf=secrets.token_urlsafe(24), name=name, expires=now + self.lifetime)
        payload = {"csrf": session.csrf, "name": name, "exp": int(session.expires.timestamp())}
        raw = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{raw}.{self._sign(raw)}", session

    def read(self, cookie: str | None, *, now: datetime) -> Session | None:
        """The session of a cookie; None when absent, forged, malformed or expired."""
        raw, _, signature = (cookie or "").partition(".")
        if not raw or not hmac.compare_digest(signature.encode(), self._sign(raw).encode()):
            return None
        try:
            payload = json.loads(_unb64(raw))
            session = Session(csrf=str(payload["csrf"]), name=str(payload["name"]),
                              expires=datetime.fromtimestamp(int(payload["exp"]), UTC))  # fmt: skip
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if now < session.expires else None

    def _sign(self, raw: str) -> str:
        return _b64(hmac.new(self._key, raw.encode(), hashlib.sha256).digest())


def csrf_matches(expected: str, given: str | None) -> bool:
    """A form's CSRF token against the session's (or the sign-in cookie's), constant time."""
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
