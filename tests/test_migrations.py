"""`alembic upgrade head` on an empty database yields exactly the models' schema."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import SCHEMA_HEAD, make_engine, migrate, schema_revisions


def _assert_matches_models(url: str) -> None:
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}),
                SQLModel.metadata,
            )
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert tables == {t.name for t in SQLModel.metadata.sorted_tables} | {"alembic_version"}


def _assert_downgrades_undo_upgrades(url: str) -> None:
    """Down to an empty database and up again: a downgrade that leaves a table, column or index
    behind makes the second upgrade fail or the schema differ from the models'."""
    from alembic import command

    from app.db import alembic_config

    command.downgrade(alembic_config(url), "base")
    assert schema_revisions(url) == []
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    _assert_matches_models(url)


def test_upgrade_head_on_empty_sqlite_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    _assert_matches_models(url)
    _assert_downgrades_undo_upgrades(url)
    # At the head, `migrate` (run by every `tabletop serve`) leaves the database as it is.
    migrate(url)
    assert schema_revisions(url) == [SCHEMA_HEAD]


@pytest.mark.postgres
def test_upgrade_head_on_empty_postgres_matches_models(empty_postgres_url: str) -> None:
    _assert_matches_models(empty_postgres_url)
    _assert_downgrades_undo_upgrades(empty_postgres_url)


def test_schema_head_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from app.db import alembic_config

    assert ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads() == [SCHEMA_HEAD]


def test_an_older_database_is_still_upgraded(tmp_path: Path) -> None:
    """The start-up shortcut only skips a database that is already at the head."""
    from alembic import command

    from app.db import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert schema_revisions(url) == []
    command.upgrade(alembic_config(url), "0001")
    assert schema_revisions(url) == ["0001"]
    _assert_matches_models(url)
    assert schema_revisions(url) == [SCHEMA_HEAD]


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}", sqlite_synchronous="FULL")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_sqlite_reads_do_not_queue_behind_a_writer(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.db import create_all
    from app.main import create_app

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    engine = make_engine(url)
    create_all(engine)
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings)
    with TestClient(app) as client, engine.connect() as writer:
        # Another process (or thread) holds the write lock for as long as it likes...
        writer.exec_driver_sql(
            "INSERT INTO facilitator (username, password_hash, created_at) VALUES ('w', 'x', '2026-01-01 00:00:00')"
        )
        # ...and a read still answers at once instead of waiting out busy_timeout with a 500.
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/exercises").status_code == 401
        writer.rollback()
    engine.dispose()


@pytest.mark.postgres
def test_a_postgres_connection_that_died_while_idle_is_replaced(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pooled connections are pinged after sitting idle, so a restarted database costs no error."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    import app.db

    engine = make_engine(empty_postgres_url)
    admin = create_engine(empty_postgres_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            first = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as connection:  # the server ends it while it sits in the pool
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
        monkeypatch.setattr(app.db, "PING_AFTER_IDLE_S", 0.0)  # it has been idle long enough
        with engine.connect() as connection:
            second = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        assert second != first
    finally:
        engine.dispose()
        admin.dispose()
