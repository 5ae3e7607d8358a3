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

Urgent writers go first. Inside `urgent_writes()` (the dispatcher sending replies and
crisis numbers, a crisis text coming in) a writer waiting for the turn is served before
every waiting ordinary one: under a flood of webhooks each holds the turn for its whole
transaction, and a reply's few short writes would otherwise queue behind all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import weakref
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
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


_URGENT: ContextVar[bool] = ContextVar("tc_urgent_writes", default=False)


@contextlib.contextmanager
def urgent_writes() -> Iterator[None]:
    """Within: this task's SQLite writes take the turn before waiting ordinary writers."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


class Turn:
    """One writer at a time, first come first served, urgent waiters before the rest."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """Say whether a writer holds the turn."""
        return self._held

    def waiting(self) -> int:
        """Return how many writers wait for the turn."""
        return len(self._urgent) + len(self._ordinary)

    def try_acquire(self) -> bool:
        """Take the turn if it is free and nobody waits; say whether it was taken."""
        if self._held or self._urgent or self._ordinary:
            return False
        self._held = True
        return True

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for the turn (an urgent writer is served before any waiting ordinary one)."""
        if self.try_acquire():
            return
        waiting = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._ordinary
        queue.append(waiting)
        try:
            await waiting
        except BaseException:
            if waiting.done() and not waiting.cancelled():
                self.release()  # handed the turn as we were cancelled: pass it on
            else:
                queue.remove(waiting)
            raise

    def release(self) -> None:
        """Hand the turn to the next waiter, urgent first, or free it."""
        for queue in (self._urgent, self._ordinary):
            while queue:
                waiting = queue.popleft()
                if not waiting.done():
                    waiting.set_result(None)  # still held: now by that waiter
                    return
        self._held = False


class Turns:
    """One writer turn per event loop for one engine."""

    def __init__(self, timeout: float = TURN_TIMEOUT) -> None:
        self.timeout = timeout
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Turn] = \
            weakref.WeakKeyDictionary()

    def lock(self) -> Turn | None:
        """Return the running loop's turn, or None outside a loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        found = self._locks.get(loop)
        if found is None:
            found = self._locks[loop] = Turn()
        return found

    def before_write(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """Wait for the writer turn before a connection's first write of a transaction."""
        info = conn.info  # the pooled connection's: it outlives this checkout
        if _HELD in info or not is_write(statement) or not in_greenlet():
            return
        lock = self.lock()
        if lock is None:
            return
        if lock.try_acquire():  # free: no task, no trip round the event loop
            info[_HELD] = lock
            return
        try:
            await_only(asyncio.wait_for(lock.acquire(urgent=_URGENT.get()), self.timeout))
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
