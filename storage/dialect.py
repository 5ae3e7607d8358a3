"""Which database a statement goes to, told in one place, and Core statements run in a
session's transaction.

Two databases are supported: SQLite (the embedded default) and PostgreSQL. Where their SQL
differs (ON CONFLICT, NOTIFY, index hints, GREATEST), the code asks `is_postgres` or takes
`insert_for`. Hot paths that need neither the ORM's identity map nor its events run Core
statements through `run`, in the session's own transaction: through the ORM the same
statement costs two to three times as much.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CursorResult, Executable
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgres(where: Any) -> bool:
    """Say whether a session, engine or connection (sync or async) talks to PostgreSQL."""
    if isinstance(where, AsyncSession):
        where = where.bind
    return where is not None and where.dialect.name == "postgresql"


def insert_for(where: Any) -> Any:
    """Return the dialect's own `insert` (with ON CONFLICT) for a session or engine."""
    return pg_insert if is_postgres(where) else sqlite_insert


async def run(session: AsyncSession, statement: Executable,
              params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
              ) -> CursorResult[Any]:
    """Execute a Core statement in the session's transaction (a list of parameter sets:
    executemany)."""
    conn = await session.connection()
    return await conn.execute(statement, params)
