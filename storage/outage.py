"""What a database that is stopped, restarting or out of reach raises, and a ping to see
whether it answers again.

Through SQLAlchemy most driver errors arrive wrapped (`SQLAlchemyError`), but a refused or
dropped connection can surface as the socket's own `OSError`, and asyncpg raises its own
types while connecting. Callers that must outlive an outage (start-up, the dispatch loop,
the worker's jobs) catch `DATABASE_DOWN`.
"""

from __future__ import annotations

import socket

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine


def _database_down() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError,
                                               socket.gaierror)
    try:
        from asyncpg.exceptions import PostgresError
        from asyncpg.exceptions import _base as asyncpg_base
    except ImportError:  # SQLite-only install
        return errors
    return (*errors, PostgresError, asyncpg_base.InterfaceError)


DATABASE_DOWN = _database_down()


def database_place(url: str) -> str:
    """Say where a database URL points (host and port, or the SQLite file), never a password."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        return "the configured database"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database}"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def why_down(exc: BaseException, *, password: str | None = None) -> str:
    """Return one short line saying why the database did not answer: the driver's error type
    and the first line of its message, with the password (if any) taken out."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    first = lines[0][:160] if lines else ""
    if password and len(password) >= 3:
        first = first.replace(password, "***")
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


async def ping(engine: AsyncEngine) -> None:
    """Open a connection and run SELECT 1; raise one of DATABASE_DOWN if that fails."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
