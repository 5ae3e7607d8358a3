"""SQLite connections for SQLAlchemy's aiosqlite dialect: one trip to the thread a statement.

aiosqlite runs each sqlite3 call on the connection's own thread, and SQLAlchemy makes four
calls a statement (open a cursor, execute, fetch the rows, close). Every call is a hop to
that thread and back through the event loop, and the hops, not SQLite, were most of a
statement's CPU. Here a cursor's `execute` opens a sqlite3 cursor, runs the statement, reads
all its rows and closes it in one call on the thread; opening, fetching and closing are then
answered at once. Rows were always read whole (SQLAlchemy buffers them), so nothing else
changes. Also: a connection that cannot open waits for its thread (aiosqlite 0.22 left the
thread to report to an event loop that might have closed).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite


class OneTripCursor:
    """What SQLAlchemy's aiosqlite adapter needs of a cursor, one thread trip a statement."""

    def __init__(self, connection: SQLiteConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.lastrowid: int | None = None
        self.rowcount = -1
        self._rows: list[Any] = []

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        """Run one statement and keep its rows."""
        run = functools.partial(_run, self._connection, sql, parameters, many=False)
        self.description, self._rows, self.lastrowid, self.rowcount = \
            await self._connection.on_thread(run)
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> OneTripCursor:
        """Run one statement for each set of parameters."""
        run = functools.partial(_run, self._connection, sql, parameters, many=True)
        self.description, self._rows, self.lastrowid, self.rowcount = \
            await self._connection.on_thread(run)
        return self

    async def fetchall(self) -> list[Any]:
        """Return the rows not yet fetched."""
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        """Return the next row, or None."""
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Return up to `size` more rows."""
        n = len(self._rows) if size is None else size
        rows, self._rows = self._rows[:n], self._rows[n:]
        return rows

    async def close(self) -> None:
        """Nothing to do: the sqlite3 cursor closed on the thread."""


def _run(connection: SQLiteConnection, sql: str, parameters: Any, *, many: bool
         ) -> tuple[Any, list[Any], int | None, int]:
    """On the connection's thread: execute, read every row, close."""
    cursor = connection.raw().cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class SQLiteConnection(aiosqlite.Connection):
    """aiosqlite's connection with one-trip cursors, which waits for its thread when
    opening fails."""

    def raw(self) -> sqlite3.Connection:
        """Return the sqlite3 connection (call it on the connection's thread only)."""
        return self._conn

    async def on_thread(self, function: Any) -> Any:
        """Run `function` on the connection's thread and return what it returns."""
        return await self._execute(function)

    async def cursor(self) -> OneTripCursor:  # type: ignore[override]
        """Return a cursor at once (the sqlite3 one is made when it executes)."""
        return OneTripCursor(self)

    async def _connect(self) -> aiosqlite.Connection:
        try:
            return await super()._connect()
        except BaseException:
            if self._thread.is_alive():
                await asyncio.to_thread(self._thread.join, 5.0)
            raise


def open_sqlite(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
    """Return an unopened connection (SQLAlchemy awaits it), as `aiosqlite.connect` does."""
    connection = SQLiteConnection(functools.partial(sqlite3.connect, *args, **kwargs), 64)
    connection._thread.daemon = True  # as SQLAlchemy does: it never holds up the exit
    return connection
