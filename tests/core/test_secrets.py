"""Site secrets are sealed in the database under a key only the deployment's secret derives."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, text, update
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from service.core import secrets as core_secrets
from service.core.db import session_scope
from service.core.secrets import (
    AT_REST_INFO,
    SEALED_PREFIX,
    SecretUnreadable,
    derive_key,
    keyring_for,
    load_secret,
)
from service.core.settings import Settings, get_settings
from service.core.tables import Site
from service.web import auth

KEY = "k" * 16 + "first-deployment-key-0123"
OTHER_KEY = "o" * 16 + "other-deployment-key-4567"
WEBHOOK_SECRET = "whsec-a-site-backend-shares-this-1234"
CORAL_SECRET = "coral-signs-its-calls-with-this-5678"

UseKey = Callable[..., None]


@pytest.fixture
def use_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[UseKey]:
    """Switch this process's MODERATION_SECRET_KEY (and previous ones), as a restart would."""

    def use(key: str, *previous: str) -> None:
        monkeypatch.setenv("MODERATION_SECRET_KEY", key)
        monkeypatch.setenv("MODERATION_SECRET_KEY_PREVIOUS", json.dumps(list(previous)))
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def _store(sessions: sessionmaker[Session], **secrets: str | None) -> int:
    with session_scope(sessions) as session:
        site = Site(name="news", policy={}, **secrets)
        session.add(site)
        session.flush()
        return site.id


def _raw(sessions: sessionmaker[Session], site_id: int) -> tuple[str | None, str | None]:
    """What the database itself holds, past the ORM's column type."""
    with sessions() as session:
        row = session.execute(
            text("SELECT webhook_secret, coral_signing_secret FROM sites WHERE id = :id"),
            {"id": site_id},
        ).one()
    return row[0], row[1]


def _read(sessions: sessionmaker[Session], site_id: int) -> tuple[str | None, str | None]:
    with sessions() as session:
        site = session.get_one(Site, site_id)
        return site.webhook_secret, site.coral_signing_secret


def test_the_database_holds_a_sealed_secret_and_the_orm_gives_it_back_plain(
    sessions: sessionmaker[Session], use_key: UseKey
) -> None:
    use_key(KEY)
    site_id = _store(sessions, webhook_secret=WEBHOOK_SECRET, coral_signing_secret=CORAL_SECRET)
    webhook_raw, coral_raw = _raw(sessions, site_id)
    for raw, plain in ((webhook_raw, WEBHOOK_SECRET), (coral_raw, CORAL_SECRET)):
        assert raw is not None and raw.startswith(SEALED_PREFIX)
        assert plain not in raw and raw != plain
    assert webhook_raw != coral_raw
    assert _read(sessions, site_id) == (WEBHOOK_SECRET, CORAL_SECRET)
    # What the webhook worker and the Coral check select: the column alone, not the object.
    with sessions() as session:
        row = session.execute(
            select(Site.webhook_secret, Site.coral_signing_secret).where(Site.id == site_id)
        ).one()
    assert tuple(row) == (WEBHOOK_SECRET, CORAL_SECRET)


def test_the_same_secret_is_sealed_differently_each_time_it_is_written(
    sessions: sessionmaker[Session], use_key: UseKey
) -> None:
    use_key(KEY)
    site_id = _store(sessions, webhook_secret=WEBHOOK_SECRET, coral_signing_secret=WEBHOOK_SECRET)
    webhook_raw, coral_raw = _raw(sessions, site_id)
    assert webhook_raw != coral_raw, "equal secrets must not show as equal ciphertexts"
    assert _read(sessions, site_id) == (WEBHOOK_SECRET, WEBHOOK_SECRET)


def test_an_unset_secret_stays_null_in_the_database(
    sessions: sessionmaker[Session], use_key: UseKey
) -> None:
    use_key(KEY)
    site_id = _store(sessions, webhook_secret=None, coral_signing_secret=None)
    assert _raw(sessions, site_id) == (None, None)
    with sessions() as session:
        unset = session.scalars(select(Site.id).where(Site.webhook_secret.is_(None))).all()
    assert unset == [site_id]


def test_another_secret_key_cannot_read_it_and_the_error_names_the_setting(
    sessions: sessionmaker[Session], use_key: UseKey
) -> None:
    use_key(KEY)
    site_id = _store(sessions, webhook_secret=WEBHOOK_SECRET)
    use_key(OTHER_KEY)
    with pytest.raises(SecretUnreadable, match="MODERATION_SECRET_KEY") as raised:
        _read(sessions, site_id)
    assert WEBHOOK_SECRET not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_previous_key_still_opens_it_and_a_new_write_seals_under_the_current_one(
    sessions: sessionmaker[Session], use_key: UseKey
) -> None:
    use_key(KEY)
    site_id = _store(sessions, webhook_secret=WEBHOOK_SECRET)
    use_key(OTHER_KEY, KEY)
    assert _read(sessions, site_id) == (WEBHOOK_SECRET, None)
    with session_scope(sessions) as session:
        session.get_one(Site, site_id).webhook_secret = CORAL_SECRET
    use_key(OTHER_KEY)  # the previous key retired: what was rewritten needs only the current
    assert _read(sessions, site_id) == (CORAL_SECRET, None)


def test_a_plain_or_altered_value_in_the_column_is_refused_never_returned(
    sessions: sessionmaker[Session], use_key: UseKey
) -> None:
    use_key(KEY)
    site_id = _store(sessions, webhook_secret=WEBHOOK_SECRET)
    sealed, _ = _raw(sessions, site_id)
    assert sealed is not None
    flipped = "A" if sealed[-5] != "A" else "B"
    altered = sealed[:-5] + flipped + sealed[-4:]
    for value, message in ((WEBHOOK_SECRET, "not encrypted"), (altered, "cannot be decrypted")):
        with session_scope(sessions) as session:
            session.execute(
                text("UPDATE sites SET webhook_secret = :value WHERE id = :id"),
                {"value": value, "id": site_id},
            )
        with pytest.raises(SecretUnreadable, match=message):
            _read(sessions, site_id)


def test_the_longest_secret_fits_its_column_and_a_longer_one_is_refused(
    sessions: sessionmaker[Session], use_key: UseKey
) -> None:
    use_key(KEY)
    longest = "\U0001d11e" * 200  # four UTF-8 bytes each: the largest sealed form
    site_id = _store(sessions, webhook_secret=longest, coral_signing_secret="x" * 200)
    assert _read(sessions, site_id) == (longest, "x" * 200)
    with pytest.raises(StatementError, match="longer than 200"), session_scope(sessions) as s:
        s.execute(update(Site).where(Site.id == site_id).values(webhook_secret="x" * 201))
    assert _read(sessions, site_id) == (longest, "x" * 200)


def test_the_session_cookie_and_the_at_rest_cipher_never_share_a_key(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, secret_key=KEY)
    secret = auth.load_secret(settings)
    sealed = keyring_for(settings).seal(WEBHOOK_SECRET)
    at_rest = derive_key(secret, info=AT_REST_INFO)
    opened = Fernet(base64.urlsafe_b64encode(at_rest)).decrypt(sealed[len(SEALED_PREFIX) :])
    assert opened == WEBHOOK_SECRET.encode(), "the at-rest key is HKDF(secret, AT_REST_INFO)"
    # The cookie signer rebuilt here is the real one: it verifies a cookie the web layer sealed.
    cookie_signer = URLSafeTimedSerializer(secret, salt="web-session")
    cookie_signer.loads(auth.seal_session(secret, auth.new_session(7)))
    cookie_key = cookie_signer.make_signer().derive_key()
    fernet_signing, fernet_encryption = at_rest[:16], at_rest[16:]
    assert len({secret, cookie_key, fernet_signing, fernet_encryption}) == 4
    assert cookie_key[:16] not in (fernet_signing, fernet_encryption)
    assert derive_key(secret, info=b"another purpose") != at_rest


def test_web_and_core_share_one_secret_and_the_generated_one_is_private(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert auth.load_secret(settings) == load_secret(settings) == core_secrets.load_secret(settings)
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert load_secret(settings) == (tmp_path / "secret_key").read_text().strip().encode()


def test_another_process_on_the_same_var_dir_opens_what_this_one_sealed(tmp_path: Path) -> None:
    # A webhook worker is its own process: with no key configured it must find the same file.
    sealed = keyring_for(Settings(var_dir=tmp_path)).seal(WEBHOOK_SECRET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODERATION_SECRET_KEY")}
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from service.core.secrets import at_rest_keyring; "
            "print(at_rest_keyring().open(sys.argv[1]))",
            sealed,
        ],
        env={**env, "MODERATION_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert opened.stdout.strip() == WEBHOOK_SECRET


def test_a_short_previous_key_is_refused_with_the_settings_name(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, secret_key=KEY, secret_key_previous=["short"])
    with pytest.raises(ValueError, match="MODERATION_SECRET_KEY_PREVIOUS"):
        keyring_for(settings)
