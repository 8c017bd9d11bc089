"""Moderator sign-in for the web pages: the secret, the signed session cookie, CSRF tokens."""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from itsdangerous import BadData, URLSafeTimedSerializer

from service.core.settings import Settings

__all__ = [
    "COOKIE_NAME",
    "WebSession",
    "load_secret",
    "new_session",
    "read_session",
    "seal_session",
    "tokens_match",
]

COOKIE_NAME = "moderation_session"
# Far enough in the future to be a forgery or a broken clock, not drift between two machines.
_CLOCK_SKEW_SECONDS = 60


@dataclass(frozen=True)
class WebSession:
    """What the cookie holds: the signed-in key's id (never the key) and the CSRF token."""

    key_id: int | None
    csrf: str
    issued_at: int


@lru_cache(maxsize=8)
def _secret_in(var_dir: Path) -> bytes:
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        # Written to a private file, then linked into place: link fails if another process won
        # the race, and nobody ever reads a half-written secret.
        temporary = var_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds fewer than 32 characters; delete it to make a new one")
    return secret.encode()


def load_secret(settings: Settings) -> bytes:
    """The configured secret, else the one kept under var_dir (made on first use)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    return _secret_in(settings.var_dir.resolve())


def _serializer(secret: bytes) -> URLSafeTimedSerializer:
    # The salt keeps a signature made for anything else from ever passing as a session.
    return URLSafeTimedSerializer(secret, salt="web-session")


def new_session(key_id: int | None = None) -> WebSession:
    """A fresh session with a new CSRF token: at first visit, at sign-in and at sign-out."""
    return WebSession(key_id, secrets.token_urlsafe(32), int(time.time()))


def seal_session(secret: bytes, session: WebSession) -> str:
    return _serializer(secret).dumps({"k": session.key_id, "c": session.csrf})


def read_session(secret: bytes, cookie: str | None, *, max_age_seconds: float) -> WebSession | None:
    """The session in a cookie this service signed and that has not expired, else None."""
    if not cookie:
        return None
    try:
        data, issued = _serializer(secret).loads(
            cookie, max_age=int(max_age_seconds), return_timestamp=True
        )
        key_id, csrf = data["k"], str(data["c"])
    except (BadData, KeyError, TypeError):
        return None
    issued_at = int(issued.timestamp())
    if issued_at - time.time() > _CLOCK_SKEW_SECONDS or len(csrf) < 32:
        return None
    return WebSession(int(key_id) if key_id is not None else None, csrf, issued_at)


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
