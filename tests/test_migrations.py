"""`alembic upgrade head` on an empty database yields exactly the models' schema."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import make_engine, migrate


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


def test_upgrade_head_on_empty_sqlite_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    _assert_matches_models(url)
    # Running it again is a no-op, as on every `tabletop serve`.
    _assert_matches_models(url)


@pytest.mark.postgres
def test_upgrade_head_on_empty_postgres_matches_models(empty_postgres_url: str) -> None:
    _assert_matches_models(empty_postgres_url)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}", sqlite_synchronous="FULL")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
