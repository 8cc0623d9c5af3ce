"""Fixtures: a fresh real database per test (SQLite, and PostgreSQL when configured) and the app."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from app.auth import service as auth
from app.auth.models import Facilitator
from app.config import Settings
from app.db import create_all, make_engine
from app.main import create_app
from app.scenarios.loader import ScenarioLibrary, load_scenario_dir

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TABLETOP_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("TABLETOP_TEST_REDIS_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
FACILITATOR_PASSWORD = "correct horse battery"
# The PostgreSQL variant of a test parametrised over `database_url`, with its marker, so that
# `pytest -m postgres` (or `-m "not postgres"`) selects exactly the tests that need the server.
ON_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
BOTH_DATABASES = ["sqlite", ON_POSTGRES]
POSTGRES_FIXTURES = frozenset({"postgres_server_url", "postgres_schema", "empty_postgres_url"})
SERVICE_MARKERS = {"TABLETOP_TEST_POSTGRES_URL": "postgres", "TABLETOP_TEST_REDIS_URL": "redis"}
_current_test: list[pytest.Item] = []


def uses_postgres(item: pytest.Item) -> bool:
    """Whether a test reaches PostgreSQL through a fixture (its own or the `database_url` param)."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("database_url") == "postgres":
        return True
    return bool(POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fail the collection when a test uses PostgreSQL without the `postgres` marker."""
    unmarked = [
        item.nodeid
        for item in items
        if uses_postgres(item) and item.get_closest_marker("postgres") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use PostgreSQL but lack @pytest.mark.postgres "
            "(a parametrised variant: pytest.param(..., marks=pytest.mark.postgres)):\n  "
            + "\n  ".join(unmarked)
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _current_test[:] = [item]


def require_service(url: str | None, name: str) -> str:
    """The service URL, or a skip that names the variable; in CI a missing service is a failure.

    A test that reaches the service without its marker (`postgres`, `redis`) fails, also when it
    calls this directly rather than through a fixture."""
    marker = SERVICE_MARKERS[name]
    if _current_test and _current_test[0].get_closest_marker(marker) is None:
        pytest.fail(f"{_current_test[0].nodeid} needs {name} but lacks @pytest.mark.{marker}")
    if url:
        return url
    message = f"{name} not set: start the service and export it to run this test"
    if IN_CI:
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


@contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    base = require_service(POSTGRES_URL, "TABLETOP_TEST_POSTGRES_URL")
    name = f"tabletop_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The PostgreSQL database shared by this test run's API tests (emptied before each)."""
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_schema(postgres_server_url: str) -> str:
    engine = make_engine(postgres_server_url)
    create_all(engine)
    engine.dispose()
    return postgres_server_url


@pytest.fixture(params=BOTH_DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database with the full schema: a new SQLite file, or PostgreSQL with tables emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tabletop.db'}"
        engine = make_engine(url)
        create_all(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("postgres_schema")
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        scenarios_dir=ROOT / "scenarios",
        sqlite_synchronous="NORMAL",
        failed_login_limit=4,
        failed_join_limit=6,
        # Exports run in the test's process; test_export_worker.py covers the worker process.
        export_worker=False,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def scenario_library() -> ScenarioLibrary:
    return load_scenario_dir(ROOT / "scenarios")


@pytest.fixture(scope="session")
def password_hash() -> str:
    # argon2 is slow on purpose; hash the shared test password once per run.
    return auth.hash_password(FACILITATOR_PASSWORD)


@pytest.fixture
def app(settings: Settings, scenario_library: ScenarioLibrary, password_hash: str):  # type: ignore[no-untyped-def]
    application = create_app(settings, scenarios=scenario_library)
    with Session(application.state.engine) as session:
        session.add(Facilitator(username="alice", password_hash=password_hash))
        session.add(Facilitator(username="bob", password_hash=password_hash))
        session.commit()
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client
