"""The async engine and sessions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.models  # noqa: F401  (registers every table)
from storage.audit_q import install_append_only
from storage.dialect import is_postgres
from storage.errors import DatabaseURLError
from storage.sqlite_conn import open_sqlite
from storage.sqlite_turns import take_turns


def async_url(url: str) -> str:
    """Turn a plain database URL into one with an async driver (aiosqlite or asyncpg)."""
    url = url.strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseURLError(f"cannot read database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False))
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise DatabaseURLError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def sync_url(url: str) -> str:
    """Turn a database URL into one for a synchronous driver (used by Alembic)."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


# SQLSTATEs of PostgreSQL errors a fresh transaction may not meet: serialization failure,
# deadlock detected, lock not available.
_PG_RETRYABLE = {"40001", "40P01", "55P03"}


def is_lock_error(exc: BaseException) -> bool:
    """Say whether a database error is lock contention that a new transaction may get past."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is not None:
        return str(code) in _PG_RETRYABLE
    message = str(orig).lower()
    return "database is locked" in message or "database table is locked" in message \
        or "busy" in message


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # SQLite's busy wait blocks the thread: on the event loop's it is kept to a few ms and
    # the connection waits for another process's lock in asyncio (storage.sqlite_conn).
    busy_ms = getattr(dbapi_conn.driver_connection, "busy_ms", 10000)
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create an async engine for a plain or async database URL.

    Parameters are hidden from SQLAlchemy's errors and statement logs: they carry message
    bodies, phone numbers, names and link codes. On SQLite, this process's writers take
    turns (`storage.sqlite_turns`).
    """
    kwargs.setdefault("hide_parameters", True)
    if async_url(url).startswith("sqlite"):
        kwargs["connect_args"] = {"async_creator_fn": open_sqlite,
                                  **kwargs.get("connect_args", {})}
    engine = create_async_engine(async_url(url), **kwargs)
    if not is_postgres(engine):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        take_turns(engine)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return a factory of sessions that keep objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session_scope(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """Yield a session; commit on success, roll back on error."""
    async with session_factory(engine)() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def create_all(engine: AsyncEngine) -> None:
    """Create every table (tests; production uses Alembic migrations)."""
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
        await conn.run_sync(install_append_only)  # the audit trail only grows


async def drop_all(engine: AsyncEngine) -> None:
    """Drop every table (tests)."""
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all)
