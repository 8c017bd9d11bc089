"""The Alembic revisions build exactly the schema the models describe, on both databases, and
move the data they change both ways."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session, sessionmaker

import migrations
from service.core.db import make_engine
from service.core.migrate import upgrade_database
from service.core.secrets import SEALED_PREFIX, SecretUnreadable, at_rest_keyring
from service.core.settings import get_settings
from service.core.tables import Base


def test_migrated_schema_matches_the_models(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        context = MigrationContext.configure(session.connection())
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


# -- 0007: site secrets sealed at rest --

KEY = "m" * 16 + "migration-test-key-0123"
WEBHOOK_SECRET = "whsec-written-in-plain-at-0006"
CORAL_SECRET = "coral-secret-written-in-plain-at-0006"


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set this process's MODERATION_SECRET_KEY, which the migration seals under."""

    def use(key: str) -> None:
        monkeypatch.setenv("MODERATION_SECRET_KEY", key)
        monkeypatch.delenv("MODERATION_SECRET_KEY_PREVIOUS", raising=False)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def _downgrade(database_url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.downgrade(config, revision)


def _site_at_0006(connection: Connection, name: str, secrets: tuple[str | None, ...]) -> int:
    site_id: int = connection.execute(
        text(
            "INSERT INTO sites (name, policy, created_at, webhook_secret, coral_signing_secret)"
            " VALUES (:name, '{}', '2026-01-01 00:00:00+00:00', :webhook, :coral) RETURNING id"
        ),
        {"name": name, "webhook": secrets[0], "coral": secrets[1]},
    ).scalar_one()
    # A row that references the site: SQLite's table rebuild must not cascade-delete it.
    connection.execute(
        text(
            "INSERT INTO api_keys (site_id, role, prefix, key_hash, name, created_at)"
            " VALUES (:site, 'submitter', :prefix, :hash, '', '2026-01-01 00:00:00+00:00')"
        ),
        {"site": site_id, "prefix": f"sk_{name}", "hash": f"hash-{name}"},
    )
    return site_id


def _stored(connection: Connection) -> dict[str, tuple[str | None, str | None]]:
    rows = connection.execute(
        text("SELECT name, webhook_secret, coral_signing_secret FROM sites")
    ).all()
    return {name: (webhook, coral) for name, webhook, coral in rows}


def _key_count(connection: Connection) -> int:
    return int(connection.execute(text("SELECT count(*) FROM api_keys")).scalar_one())


def test_0007_seals_the_plain_secrets_of_0006_and_its_downgrade_restores_them(
    database_url: str, secret_key: Callable[[str], None]
) -> None:
    secret_key(KEY)
    upgrade_database(database_url, "0006")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            _site_at_0006(connection, "news", (WEBHOOK_SECRET, CORAL_SECRET))
            _site_at_0006(connection, "quiet", (None, None))
        upgrade_database(database_url, "0007")
        with engine.connect() as connection:
            sealed, keys_after_upgrade = _stored(connection), _key_count(connection)
        _downgrade(database_url, "0006")
        with engine.connect() as connection:
            restored, keys_after_downgrade = _stored(connection), _key_count(connection)
    finally:
        engine.dispose()
    webhook, coral = sealed["news"]
    assert webhook is not None and coral is not None
    assert webhook.startswith(SEALED_PREFIX) and WEBHOOK_SECRET not in webhook
    assert coral.startswith(SEALED_PREFIX) and CORAL_SECRET not in coral
    keyring = at_rest_keyring()
    assert (keyring.open(webhook), keyring.open(coral)) == (WEBHOOK_SECRET, CORAL_SECRET)
    assert sealed["quiet"] == (None, None)
    assert restored == {"news": (WEBHOOK_SECRET, CORAL_SECRET), "quiet": (None, None)}
    assert keys_after_upgrade == keys_after_downgrade == 2, "no site's rows were lost"


def test_0007_downgrade_under_another_key_stops_with_a_clear_error_and_changes_nothing(
    database_url: str, secret_key: Callable[[str], None]
) -> None:
    secret_key(KEY)
    upgrade_database(database_url, "0006")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            _site_at_0006(connection, "news", (WEBHOOK_SECRET, None))
        upgrade_database(database_url, "0007")
        with engine.connect() as connection:
            before = _stored(connection)
        secret_key("x" * 40)
        with pytest.raises(SecretUnreadable, match="MODERATION_SECRET_KEY"):
            _downgrade(database_url, "0006")
        with engine.connect() as connection:
            after = _stored(connection)
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert after == before and version == "0007"
    secret_key(KEY)
    assert at_rest_keyring().open(after["news"][0] or "") == WEBHOOK_SECRET


def test_0007_run_again_after_stopping_midway_leaves_sealed_values_sealed_once(
    database_url: str, secret_key: Callable[[str], None]
) -> None:
    secret_key(KEY)
    upgrade_database(database_url, "0006")
    already = at_rest_keyring().seal(WEBHOOK_SECRET)  # as a run stopped before its version
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            _site_at_0006(connection, "news", (already, CORAL_SECRET))
        upgrade_database(database_url, "0007")
        with engine.connect() as connection:
            webhook, coral = _stored(connection)["news"]
    finally:
        engine.dispose()
    assert webhook == already
    assert at_rest_keyring().open(coral or "") == CORAL_SECRET
