"""SQLite connections for SQLAlchemy's aiosqlite dialect, run on the event loop's own thread.

aiosqlite runs every sqlite3 call on a thread of its own and hands the answer back through
the event loop. Under load that hand-back is the cost: it waits behind every other task
ready to run, and a writer holds the process's writer turn (`storage.sqlite_turns`) across
every hop of its transaction. At 100 webhooks a second the writers' turns, not SQLite or
the CPU, set the pace (the process sat 60% idle while replies queued for a minute).

SQLite is an embedded library: a statement on a small database takes microseconds, less
than the hop. So here the statement runs where it is asked for, on the loop's thread, and a
transaction runs from its first write to its commit without giving up the loop. What
could block the loop is another process holding the file's write lock (a CLI command, a
separate worker), so SQLite's own busy wait is kept to a few milliseconds and a statement
that opens a transaction and finds the database busy waits in asyncio instead, backing off,
up to `BUSY_SECONDS` in all, before "database is locked" is raised as before. Inside a
transaction this connection already holds the lock, and WAL readers never wait for it.

Also `OneTripCursor`: a statement is executed, read whole and closed in one call (rows were
always read whole: SQLAlchemy buffers them).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

BUSY_SECONDS = 10.0  # how long a statement waits (in asyncio) for another process's write
BUSY_MS_ON_LOOP = 2  # SQLite's own busy wait, which blocks the loop, before asyncio takes over
_BACKOFF = (0.001, 0.05)  # first and longest asyncio wait between tries


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Say whether SQLite refused a statement because another connection holds a lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


class OneTripCursor:
    """What SQLAlchemy's aiosqlite adapter needs of a cursor: a statement runs, is read
    whole and closed in one call, on the loop's thread."""

    def __init__(self, connection: LoopConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.lastrowid: int | None = None
        self.rowcount = -1
        self._rows: list[Any] = []

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        """Run one statement and keep its rows."""
        return await self._execute(sql, parameters, many=False)

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> OneTripCursor:
        """Run one statement for each set of parameters."""
        return await self._execute(sql, parameters, many=True)

    async def _execute(self, sql: str, parameters: Any, *, many: bool) -> OneTripCursor:
        run = functools.partial(_run, self._connection.raw(), sql, parameters, many=many)
        self.description, self._rows, self.lastrowid, self.rowcount = \
            await self._connection.run(run)
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
        """Nothing to do: the sqlite3 cursor closed when the statement ran."""


def _run(raw: sqlite3.Connection, sql: str, parameters: Any, *, many: bool
         ) -> tuple[Any, list[Any], int | None, int]:
    """Execute, read every row, close."""
    cursor = raw.cursor()
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


class _AtOnce:
    """Stands in for aiosqlite's request queue: SQLAlchemy sets the isolation level
    through it (a future and a function), and here the function runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # noqa: BLE001  (handed to the awaiting caller)
            future.set_exception(exc)


class LoopConnection:
    """A sqlite3 connection with the coroutine face of an aiosqlite one, run on the
    calling thread; a statement that would open a transaction on a busy database waits in
    asyncio (see the module docstring)."""

    busy_ms = BUSY_MS_ON_LOOP

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 busy_seconds: float | None = None) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._tx = _AtOnce()
        self.busy_seconds = BUSY_SECONDS if busy_seconds is None else busy_seconds

    def __await__(self) -> Generator[Any, None, LoopConnection]:
        return self._open().__await__()

    async def _open(self) -> LoopConnection:
        self._conn = self._connect()
        return self

    def raw(self) -> sqlite3.Connection:
        """Return the sqlite3 connection."""
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        """The sqlite3 connection's isolation level (None: autocommit)."""
        return self.raw().isolation_level

    @property
    def in_transaction(self) -> bool:
        """Say whether a transaction is open."""
        return self.raw().in_transaction

    async def run(self, function: Callable[[], Any]) -> Any:
        """Run `function` (one statement) now; if it would open a transaction and the
        database is busy, roll back, wait in asyncio and try again, for a while."""
        raw = self.raw()
        if raw.in_transaction:
            return function()  # this connection's transaction: no one else's lock to meet
        deadline, pause = time.monotonic() + self.busy_seconds, _BACKOFF[0]
        while True:
            try:
                return function()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() + pause > deadline:
                    raise
                if raw.in_transaction:
                    raw.rollback()  # the implicit BEGIN took: nothing was written yet
            await asyncio.sleep(pause)
            pause = min(pause * 2, _BACKOFF[1])

    async def cursor(self) -> OneTripCursor:
        """Return a cursor (the sqlite3 one is made when it executes)."""
        return OneTripCursor(self)

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        """Run one statement on a new cursor."""
        return await OneTripCursor(self).execute(sql, parameters)

    async def commit(self) -> None:
        """Commit the transaction."""
        self.raw().commit()

    async def rollback(self) -> None:
        """Roll the transaction back."""
        self.raw().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Register a SQL function (SQLAlchemy's regexp)."""
        self.raw().create_function(*args, **kwargs)

    async def close(self) -> None:
        """Close the connection (again is fine)."""
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def open_sqlite(*args: Any, **kwargs: Any) -> LoopConnection:
    """Return an unopened connection (SQLAlchemy awaits it), as `aiosqlite.connect` does.

    Pooled connections may be used from more than one thread (one at a time): tests run a
    server's loop on a thread of its own."""
    kwargs["check_same_thread"] = False
    return LoopConnection(functools.partial(sqlite3.connect, *args, **kwargs))
