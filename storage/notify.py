"""Tell other processes that the outbox has news (PostgreSQL LISTEN/NOTIFY).

A NOTIFY sent inside a transaction is delivered when it commits, and PostgreSQL folds
repeats within one transaction into one, so writers may call `notify_outbox` freely. On
SQLite there is one process, and it wakes its own loops in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

logger = logging.getLogger(__name__)
CHANNEL = "throughcare_outbox"


_local: list[Callable[[], None]] = []  # loops in this process


def on_local_notify(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after any transaction in this process that wrote to the outbox
    commits; return a function that stops it."""
    _local.append(callback)
    return lambda: _local.remove(callback) if callback in _local else None


def _tell_local(*_args: Any) -> None:
    for callback in list(_local):
        callback()


async def notify_outbox(session: AsyncSession) -> None:
    """Wake the dispatch loops, here and in other processes, when this transaction commits."""
    if _local and not event.contains(session.sync_session, "after_commit", _tell_local):
        event.listen(session.sync_session, "after_commit", _tell_local, once=True)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.exec(text(f"NOTIFY {CHANNEL}"))  # type: ignore[call-overload]


async def listen_outbox(engine: AsyncEngine, callback: Callable[[], None]) -> None:
    """Call `callback` on every outbox notification until cancelled (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection

        def heard(*_args: Any) -> None:
            callback()

        await driver.add_listener(CHANNEL, heard)
        try:
            await asyncio.Event().wait()
        finally:
            await driver.remove_listener(CHANNEL, heard)
