"""The deployment's secret and the keys derived from it: site secrets encrypted at rest."""

from __future__ import annotations

import base64
import contextlib
import math
import os
import secrets
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.core.settings import Settings, get_settings

__all__ = [
    "AT_REST_INFO",
    "SEALED_PREFIX",
    "Keyring",
    "SecretUnreadable",
    "at_rest_keyring",
    "derive_key",
    "keyring_for",
    "load_secret",
    "sealed_length",
]

# Names the scheme of what follows (Fernet under an HKDF-SHA256 key with `AT_REST_INFO`), so a
# later scheme can sit beside it in the same column and be told apart without trying keys.
SEALED_PREFIX = "enc:v1:"
# HKDF's info: keys for different purposes come out unrelated even from one secret. The cookie
# signer (service/web/auth.py) never sees this key, only the secret through its own derivation.
AT_REST_INFO = b"moderation/at-rest/site-secrets/fernet/v1"
_MIN_SECRET_LENGTH = 32
_FERNET_OVERHEAD = 1 + 8 + 16 + 32  # version, timestamp, IV, HMAC; AES-CBC pads to 16 bytes


class SecretUnreadable(RuntimeError):
    """A stored value none of the configured keys opens: the key changed, or the row did."""


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
    if len(secret) < _MIN_SECRET_LENGTH:
        raise RuntimeError(f"{path} holds fewer than 32 characters; delete it to make a new one")
    return secret.encode()


def load_secret(settings: Settings) -> bytes:
    """The configured secret, else the one kept under var_dir (made on first use)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    return _secret_in(settings.var_dir.resolve())


def derive_key(secret: bytes, *, info: bytes) -> bytes:
    """32 bytes for one purpose (`info`), independent of the keys of every other purpose."""
    # No salt: the secret is already uniformly random (generated) or long (checked at start).
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def sealed_length(max_chars: int) -> int:
    """The longest sealed form of a text of `max_chars` characters (4 UTF-8 bytes each)."""
    padded = (4 * max_chars // 16 + 1) * 16
    return len(SEALED_PREFIX) + 4 * math.ceil((_FERNET_OVERHEAD + padded) / 3)


class Keyring:
    """Seals text under the current secret's key; opens what it or a previous one sealed."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        fernets = [
            Fernet(base64.urlsafe_b64encode(derive_key(secret, info=AT_REST_INFO)))
            for secret in (current, *previous)
        ]
        self._current = fernets[0]
        self._all = MultiFernet(fernets)

    def seal(self, plain: str) -> str:
        return SEALED_PREFIX + self._current.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise SecretUnreadable(
                "a stored site secret is not encrypted (written before migration 0007, or by "
                "hand): run `moderation migrate`, or set the secret again"
            )
        try:
            token = sealed.removeprefix(SEALED_PREFIX).encode("ascii")
            return self._all.decrypt(token).decode()
        except (InvalidToken, UnicodeError):
            # Raised bare (`from None`): the library's own traceback says nothing more.
            raise SecretUnreadable(
                "a stored site secret (webhook or Coral signing secret) cannot be decrypted with "
                "MODERATION_SECRET_KEY (or the generated var_dir/secret_key when it is empty) "
                "nor any of MODERATION_SECRET_KEY_PREVIOUS: the key changed since it was "
                "stored, or the value was altered; configure the key it was stored with"
            ) from None


def _checked_previous(previous: Sequence[str]) -> list[bytes]:
    # Checked here, where the keys are made: a short one is a typo, not a key to try.
    if any(len(secret) < _MIN_SECRET_LENGTH for secret in previous):
        raise ValueError(
            f"every MODERATION_SECRET_KEY_PREVIOUS entry must be at least "
            f"{_MIN_SECRET_LENGTH} characters"
        )
    return [secret.encode() for secret in previous]


@lru_cache(maxsize=8)
def _keyring(current: bytes, previous: tuple[bytes, ...]) -> Keyring:
    return Keyring(current, previous)


def keyring_for(settings: Settings) -> Keyring:
    """The keyring of these settings; every process of one deployment derives the same."""
    return _keyring(load_secret(settings), tuple(_checked_previous(settings.secret_key_previous)))


def at_rest_keyring() -> Keyring:
    """The keyring of this process's settings, which the ORM's encrypted columns use. Looked
    up on each use, never at import, so a process (or a test) with new settings gets it."""
    return keyring_for(get_settings())
