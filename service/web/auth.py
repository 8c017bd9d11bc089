"""Moderator sign-in for the web pages: the secret, the signed session cookie, CSRF tokens."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from service.core import secrets as core_secrets
from service.core.settings import Settings

__all__ = [
    "COOKIE_NAME",
    "WebSession",
    "load_secret",
    "new_session",
    "read_session",
    "seal_session",
    "seen_now",
    "tokens_match",
]

COOKIE_NAME = "moderation_session"
# Far enough in the future to be a forgery or a broken clock, not drift between two machines.
_CLOCK_SKEW_SECONDS = 60
_SALT = "web-session"


@dataclass(frozen=True)
class WebSession:
    """What the cookie holds: the signed-in key's id (never the key), the CSRF token, when the
    session began (the absolute limit counts from there) and when its cookie was last issued
    (the idle limit counts from there)."""

    key_id: int | None
    csrf: str
    issued_at: int
    seen_at: int


def load_secret(settings: Settings) -> bytes:
    """The configured secret, else the one kept under var_dir (made on first use). One
    implementation, in core: the same secret keys the site secrets encrypted at rest."""
    return core_secrets.load_secret(settings)


class _SignedAt(TimestampSigner):
    """Signs with the session's own last-seen time, so the cookie's signature dates it."""

    def __init__(self, *args: Any, at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._at = at

    def get_timestamp(self) -> int:
        return self._at


def _serializer(secret: bytes, *, signed_at: int | None = None) -> URLSafeTimedSerializer:
    # The salt keeps a signature made for anything else from ever passing as a session.
    if signed_at is None:
        return URLSafeTimedSerializer(secret, salt=_SALT)
    return URLSafeTimedSerializer(
        secret, salt=_SALT, signer=_SignedAt, signer_kwargs={"at": signed_at}
    )


def new_session(key_id: int | None = None) -> WebSession:
    """A fresh session with a new CSRF token: at first visit, at sign-in and at sign-out."""
    now = int(time.time())
    return WebSession(key_id, secrets.token_urlsafe(32), now, now)


def seen_now(session: WebSession) -> WebSession:
    """The same session, seen by this request: what a re-issued cookie carries."""
    return replace(session, seen_at=int(time.time()))


def seal_session(secret: bytes, session: WebSession) -> str:
    payload = {"k": session.key_id, "c": session.csrf, "s": session.issued_at}
    return _serializer(secret, signed_at=session.seen_at).dumps(payload)


def read_session(
    secret: bytes, cookie: str | None, *, lifetime_seconds: float, idle_seconds: float
) -> WebSession | None:
    """The session in a cookie this service signed, within its absolute lifetime and, once
    signed in, seen within the idle limit; else None."""
    if not cookie:
        return None
    try:
        data, signed = _serializer(secret).loads(cookie, return_timestamp=True)
        key_id, csrf = data["k"], str(data["c"])
        seen_at = int(signed.timestamp())
        # Cookies sealed before sessions carried their start: their signing time is their start.
        issued_at = int(data.get("s", seen_at))
    except (BadData, KeyError, TypeError, ValueError, AttributeError):
        return None
    now = time.time()
    if max(issued_at, seen_at) - now > _CLOCK_SKEW_SECONDS or len(csrf) < 32:
        return None
    if now - issued_at > lifetime_seconds:
        return None
    # A session without a key only carries the sign-in form's CSRF token: an idle limit on it
    # would only make a sign-in page left open refuse its own form.
    if key_id is not None and now - seen_at > idle_seconds:
        return None
    return WebSession(int(key_id) if key_id is not None else None, csrf, issued_at, seen_at)


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
