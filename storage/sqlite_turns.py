"""SQLite writers in one process take turns in asyncio, not on the database file's lock.

SQLite lets one transaction write at a time. Left to the file lock, a busy process's writers
wait in SQLite's busy handler, which polls with growing sleeps (up to 100 ms a time) and
gives up with "database is locked": under a burst of webhooks that made replies wait
seconds and then fail. Here a connection's first INSERT, UPDATE or DELETE in a transaction
waits for the process's writer turn (an asyncio lock: first come, first served, no polling)
and holds it until the connection goes back to the pool, after its commit or rollback.
Reads are untouched (Python's sqlite3 runs a SELECT before any write outside a
transaction, and WAL readers never wait for the writer), and other processes still meet the
file lock and its busy timeout as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import in_greenlet

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
TURN_TIMEOUT = 30.0  # seconds a writer waits for its turn before "database is locked"
_HELD = "tc_writer_turn"


def is_write(statement: str) -> bool:
    """Say whether a statement writes rows (DDL and PRAGMAs are left to SQLite)."""
    return statement.lstrip().upper().startswith(WRITES)


class Turns:
    """One writer turn per event loop for one engine."""

    def __init__(self, timeout: float = TURN_TIMEOUT) -> None:
        self.timeout = timeout
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = \
            weakref.WeakKeyDictionary()

    def lock(self) -> asyncio.Lock | None:
        """Return the running loop's lock, or None outside a loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        found = self._locks.get(loop)
        if found is None:
            found = self._locks[loop] = asyncio.Lock()
        return found

    def before_write(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """Wait for the writer turn before a connection's first write of a transaction."""
        info = conn.info  # the pooled connection's: it outlives this checkout
        if _HELD in info or not is_write(statement) or not in_greenlet():
            return
        lock = self.lock()
        if lock is None:
            return
        try:
            await_only(asyncio.wait_for(lock.acquire(), self.timeout))
        except TimeoutError:
            # As SQLAlchemy raises SQLite's own: callers that retry a busy database do here.
            raise OperationalError(statement, None, sqlite3.OperationalError(
                "database is locked (another writer in this process held it "
                f"{self.timeout:g}s)"), hide_parameters=True) from None
        info[_HELD] = lock

    @staticmethod
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        """Give the turn back when the connection returns to the pool."""
        lock = record.info.pop(_HELD, None)
        if lock is not None and lock.locked():
            lock.release()


def take_turns(engine: AsyncEngine, timeout: float = TURN_TIMEOUT) -> Turns:
    """Make this SQLite engine's writers take turns; return the turns (for tests)."""
    turns = Turns(timeout)
    event.listen(engine.sync_engine, "before_cursor_execute", turns.before_write)
    event.listen(engine.sync_engine, "checkin", turns.on_checkin)
    return turns
