"""Database engine, metadata naming convention and the request session dependency."""

import contextlib
import functools
import json
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import Depends, Request
from sqlalchemy import Column, DateTime, event, text
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, create_engine
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# Stable constraint names make Alembic autogenerate and batch ALTERs on SQLite reproducible.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_engine(url: str, *, sqlite_synchronous: str = "FULL") -> Engine:
    """An engine for SQLite (WAL, immediate transactions) or PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # LIFO: the connection used last is used next, so the live batches keep one connection
        # warm (the driver prepares a statement after a few uses on a connection; in turn, ten
        # connections needed fifty batches before every batch ran prepared statements).
        engine = create_engine(
            url, pool_size=10, max_overflow=20, pool_use_lifo=True, json_serializer=json_text
        )
        _ping_after_idle(engine)
        return engine

    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        json_serializer=json_text,
        # Enough pooled connections for the live hub's threads and a few requests: an overflow
        # connection is closed after each use, and opening one (with its PRAGMAs) is not free.
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=30,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Writers take the write lock up front, so busy_timeout applies instead of failing
        # mid-transaction; readers (see `reading`) begin deferred and never wait for writers.
        mode = connection.get_execution_options().get(_SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


SQLITE_POOL_SIZE = 12
# A pooled PostgreSQL connection idle this long is pinged before use.
PING_AFTER_IDLE_S = 5.0
_CHECKED_IN_AT = "tabletop_checked_in_at"


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle: a restarted database is noticed.

    `pool_pre_ping` would ping on every checkout, one more round trip for every request and
    every live batch; a connection in steady use has just shown that it works.
    """

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_CHECKED_IN_AT, 0.0) < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool drops this connection and checks out a fresh one.
            raise DisconnectionError(f"the database connection is gone: {exc}") from exc


def json_text(value: Any) -> str:
    # JSON columns keep Japanese as UTF-8, not as \\uXXXX escapes: event payloads carrying
    # answers are half the size and decode faster. (Lone surrogates are refused at the door.)
    return json.dumps(value, ensure_ascii=False)


# Rows per multi-row INSERT on SQLite. A batch takes at most one statement of each size (more of
# 64 only past 127 rows): few statements, and few texts for the driver's statement cache.
SQLITE_CHUNKS = (64, 32, 16, 8, 4, 2, 1)


def insert_many(
    session: Session,
    statement: UpdateBase,
    rows: Sequence[dict[str, Any]],
    *,
    on_conflict: str = "",
) -> list[int]:
    """Insert many rows (all with the same keys) on SQLite with a few multi-row statements, in
    the session's transaction; returns the rowids the rows were given, in their order.

    Not executemany: the sqlite3 module lets go of the GIL around each row's step and reset, and
    a worker thread that has let go of it waits for the event loop to hand it back, up to the
    switch interval each time the loop is busy. With executemany a batch of live edits did that
    a few times per edit (36 edits beside a thread busy with Python: 184 ms, for 10 ms alone);
    here it is a few times per statement (19 ms, for 5 ms alone).

    Nor SQLAlchemy's executemany, which sends every value of every row through generic
    per-parameter machinery (for the 11 rows of a batch, 0.43 ms where the driver's own
    executemany took 0.17-0.29 ms): each parameter's own converter (a datetime to text, a dict
    to JSON: the same conversions) runs once per distinct value, the batch's time stamp once.
    `statement` is built once, at module level: it is a cache key.

    A statement's rows get consecutive rowids, each one more than the table's largest, since the
    transaction holds SQLite's write lock; so the statement's last rowid gives them all. With
    `on_conflict` (an upsert's clause), a row that updated an existing one has no rowid of its
    own: ignore the result then.
    """
    if not rows:
        return []
    sql, _, parameters = _driver_rows(statement, rows, session.get_bind().dialect)
    driver = driver_connection(session)
    rowids: list[int] = []
    start = 0
    for size in SQLITE_CHUNKS:
        while len(parameters) - start >= size:
            chunk = parameters[start : start + size]
            start += size
            cursor = driver.execute(
                _multi_row(sql, size, on_conflict), [v for row in chunk for v in row]
            )
            last = cursor.lastrowid
            rowids.extend(range(last - size + 1, last + 1))
    return rowids


@functools.lru_cache(maxsize=256)
def _multi_row(sql: str, rows: int, on_conflict: str) -> str:
    """A one-row `INSERT … VALUES (?, …)` for `rows` rows, with the clause after it."""
    head, values = sql.rsplit(" VALUES ", 1)
    return f"{head} VALUES {', '.join([values] * rows)} {on_conflict}".rstrip()


def on_postgres(session: Session) -> bool:
    """Whether the session's database is PostgreSQL (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def driver_connection(session: Session) -> Any:
    """The driver's own connection under the session's, in the session's transaction."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    return driver


@contextlib.contextmanager
def one_round_trip(session: Session) -> Iterator[Any]:
    """On PostgreSQL: the session's transaction, from its start to its commit, as one round trip.

    Yields psycopg's connection in pipeline mode; the caller executes its statements (their
    results can be fetched once the block is left), and leaving sends COMMIT and the one sync.
    On an error nothing is committed. Left to itself, psycopg opens a transaction with a round
    trip of its own (BEGIN, then a sync) and commits with another: each a wait for the server,
    and after each, on a busy server, a wait for the GIL, with the exercise's lock held from the
    first statement on. In autocommit mode the pipeline carries its own BEGIN and COMMIT, and the
    statements between them are one transaction as before. Only at the start of a transaction.
    """
    connection = driver_connection(session)
    connection.autocommit = True
    try:
        with connection.pipeline():
            connection.execute("BEGIN")
            yield connection
            connection.execute("COMMIT")
    finally:
        if not connection.closed:  # (a lost connection is dropped by the pool)
            if connection.info.transaction_status.name != "IDLE":  # it failed: no commit
                connection.rollback()
            connection.autocommit = False


def driver_params(
    statement: UpdateBase | Select[Any], rows: Sequence[dict[str, Any]], dialect: Dialect
) -> tuple[str, list[dict[str, Any]]]:
    """The statement's text for the driver's own cursor and each row's parameters by name,
    converted by their types as SQLAlchemy converts them: for PostgreSQL statements sent in
    psycopg's pipeline, which SQLAlchemy cannot drive (it reads each result as it executes)."""
    sql, keys, parameters = _driver_rows(statement, rows, dialect)
    return sql, [dict(zip(keys, row, strict=True)) for row in parameters]


def _driver_rows(
    statement: UpdateBase | Select[Any], rows: Sequence[dict[str, Any]], dialect: Dialect
) -> tuple[str, tuple[str, ...], list[tuple[Any, ...]]]:
    """The statement's text in the driver's style, its parameters' keys in order and its rows'
    parameters in that order, each value converted by its column's type once per distinct value."""
    sql, keys, converters = _driver_statement(statement, tuple(rows[0]), dialect)
    columns: list[list[Any]] = []
    for key, convert in zip(keys, converters, strict=True):
        values = [row[key] for row in rows]
        if convert is not None:
            # By identity: the rows hold every value, so no id is reused meanwhile.
            distinct = {id(value): value for value in values}
            converted = {ident: convert(value) for ident, value in distinct.items()}
            values = [converted[id(value)] for value in values]
        columns.append(values)
    return sql, keys, list(zip(*columns, strict=True))


@functools.lru_cache(maxsize=64)  # a few statements per engine; tests make many engines
def _driver_statement(
    statement: UpdateBase | Select[Any], keys: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[str, ...], list[Any]]:
    """The statement's text in the driver's parameter style, its parameters' keys in order, and
    each one's converter (None where the driver takes the value as it is)."""
    compiled = statement.compile(
        dialect=dialect, column_keys=list(keys) if statement.is_insert else None
    )
    order = tuple(compiled.positiontup or keys)
    converters = [
        compiled.binds[key].type.dialect_impl(dialect).bind_processor(dialect) for key in order
    ]
    return str(compiled), order, converters


_SQLITE_BEGIN = "tabletop_sqlite_begin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def reading(engine: Engine) -> Engine:
    """The same engine for work that only reads: on SQLite it never queues behind writers."""
    return engine.execution_options(**{_SQLITE_BEGIN: "DEFERRED"})


def create_all(engine: Engine) -> None:
    """Create every table (tests and first start use migrations; this is for throwaway databases)."""
    import app.models  # noqa: F401  (registers every table)

    SQLModel.metadata.create_all(engine)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request, closed afterwards; services own the commit.

    Opened and closed on the event loop rather than by a worker thread each way (two thread
    hops of every request): opening does no I/O, nor does closing a session whose service
    committed, as the connection went back to the pool then. One still in a transaction
    (a read, an error) is rolled back and closed in a worker thread, whatever cancels the request.
    """
    from app.eventlog import (
        service as events,  # here, not at the top: the event model itself imports this module
    )

    engine: Engine = request.app.state.engine
    bind = reading(engine) if request.method in SAFE_METHODS else engine
    session = Session(bind, expire_on_commit=False)
    events.listen(session, request.app.state.on_events)
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def reject_nul(value: str) -> str:
    """Refuse U+0000, which PostgreSQL text cannot hold, so both backends accept the same input."""
    if "\x00" in value:
        raise ValueError("text may not contain the NUL character (U+0000)")
    return value


def utcnow() -> datetime:
    """The server's clock, the only clock of an exercise."""
    return datetime.now(UTC)


def new_id() -> str:
    """An unguessable identifier for rows that appear in URLs."""
    return secrets.token_urlsafe(12)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC on every backend and always returns timezone-aware values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = False, index: bool = False, now: bool = False) -> Any:
    """A field for a UTC timestamp; `now` fills it with the server's clock on creation."""
    column: Column[datetime] = Column(UTCDateTime(), nullable=nullable, index=index)
    if now:
        return Field(default_factory=utcnow, sa_column=column)
    return Field(default=None, sa_column=column)


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> "AlembicConfig":
    """Alembic's configuration for this project, pointed at `url`."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    # Escape % so a password with % in the URL survives ConfigParser interpolation.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# The newest migration's revision. A database already there skips Alembic on start (importing
# and running it is a tenth of a cold start); tests/test_migrations.py keeps this equal to the
# head of migrations/versions.
SCHEMA_HEAD = "0005"


def schema_revisions(url: str) -> list[str]:
    """The revisions recorded in the database at `url`; none for a new or unreadable one."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            )
    except SQLAlchemyError:
        return []
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    if schema_revisions(url) == [SCHEMA_HEAD]:
        return
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def backup_database(url: str, destination: Path) -> None:
    """Copy the database to `destination` while the server keeps running."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        source_path = parsed.database
        if not source_path or source_path == ":memory:" or not Path(source_path).exists():
            raise FileNotFoundError(f"No SQLite database at {source_path!r}.")
        # SQLite's online backup API copies a consistent snapshot page by page while writers go on.
        with sqlite3.connect(source_path) as source, sqlite3.connect(destination) as target:
            source.backup(target)
        return
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise FileNotFoundError("pg_dump is not installed; install postgresql-client.")
    libpq_url = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(
        [pg_dump, "--format=custom", "--no-owner", f"--file={destination}", libpq_url],
        check=True,
        capture_output=True,
    )
