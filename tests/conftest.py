"""Shared fixtures: real SQLite and PostgreSQL databases, and a real stack per test module
(Redis, Celery workers, beat, the API) as the module's `STACK` spec says."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from classifier import ToxicityModel, save_model
from service.core.db import make_engine, make_session_factory
from service.core.migrate import upgrade_database
from tests.factories import tiny_model
from tests.stack import Stack, StackSpec, database_for, start_stack

POSTGRES_ADMIN_URL = os.environ.get(
    "MODERATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database, empty or a copy of `template`, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"moderation_test_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    except Exception as exc:
        admin.dispose()
        if os.environ.get("MODERATION_TEST_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One PostgreSQL database for a module's long-lived stack (see tests/integration)."""
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes this runs on SQLite and on PostgreSQL, on an empty database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once for the whole run, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated once for the whole run, the template each
    test's database is created from, rather than migrating an empty one for every test."""
    with postgres_database() as url:
        upgrade_database(url)
        name = make_url(url).database
        assert name is not None
        yield name


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of its own for each test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        template = request.getfixturevalue("sqlite_template")
        # SQLite's backup, not a file copy: the template's last pages may sit in its WAL.
        with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as dest:
            source.backup(dest)
        yield f"sqlite:///{path}"
        return
    with postgres_database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture
def sessions(migrated_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated, empty database (SQLite or PostgreSQL)."""
    engine = make_engine(migrated_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def _spec(module: object) -> StackSpec:
    spec = getattr(module, "STACK", StackSpec())
    assert isinstance(spec, StackSpec), "a module's STACK must be a tests.stack.StackSpec"
    return spec


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # One stack per database of the module's spec, shared by the module's tests; a module with
    # a `stack` fixture of its own (a fresh stack per test) starts it itself.
    if "stack" in metafunc.fixturenames and not hasattr(metafunc.module, "stack"):
        databases = _spec(metafunc.module).databases
        metafunc.parametrize("stack", databases, indirect=True, scope="module")


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A running stack for the module, on the database of this parameter."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    directory = tmp_path_factory.mktemp(f"{name}-{request.param}")
    with start_stack(_spec(request.module), directory, database_for(request, directory)) as running:
        yield running


@pytest.fixture(scope="session")
def model() -> ToxicityModel:
    """A model fitted on the tiny synthetic corpus in well under a second."""
    return tiny_model()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, model: ToxicityModel) -> Path:
    return save_model(model, tmp_path_factory.mktemp("model"))
