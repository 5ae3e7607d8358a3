"""Tell other processes that the outbox has news (PostgreSQL LISTEN/NOTIFY).

A NOTIFY sent inside a transaction is delivered when it commits, and PostgreSQL folds
repeats within one transaction into one, so writers may call `notify_outbox` freely. On
SQLite there is one process, and it wakes its own loops in memory.

A notification names the lane of what was written (`storage.claims_q.Lane`; None: any), so
a reply wakes only the urgent loop: every wake costs a loop a claim and a look at the next
due time, and a reply per second per person at 100 a second made the bulk loop's wakes a
tenth of the dispatcher's work, for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.claims_q import Lane
from storage.dialect import is_postgres

logger = logging.getLogger(__name__)
CHANNEL = "throughcare_outbox"


Wake = Callable[[Lane | None], None]  # told which lane has news (None: any)
_local: list[Wake] = []  # loops in this process
_LANES = "tc_wake_lanes"  # session.info: the lanes this transaction wrote to


def on_local_notify(callback: Wake) -> Callable[[], None]:
    """Call `callback` with the lane after any transaction in this process that wrote to
    the outbox commits; return a function that stops it."""
    _local.append(callback)
    return lambda: _local.remove(callback) if callback in _local else None


def _tell_local(lanes: Iterable[Lane | None] = (None,)) -> None:
    wanted = set(lanes)
    named = [None] if None in wanted else [lane for lane in Lane if lane in wanted]
    for lane in named:
        for callback in list(_local):
            callback(lane)


def _after_commit(session: Any) -> None:
    _tell_local(session.info.pop(_LANES, None) or (None,))


# Seconds after which held wakes are given anyway, in case the fast path never ran.
HELD_WAKE_FALLBACK = 2.0


@dataclass
class HeldWakes:
    """What a webhook sends itself right after it commits (the fast path).

    Where a dispatch loop runs in this process, it sends the replies: it claims many rows
    a pass, where a fast path per message takes three more write turns. Only crisis
    numbers are sent by the webhook itself, at once, whatever the loop is doing; the loops
    are not woken for them, and are woken afterwards if one was not sent. With no loop
    here, the fast path sends every reply (`loop_here` is False).
    """

    loop_here: bool = field(default_factory=lambda: bool(_local))
    keys: set[str] = field(default_factory=set)

    def fast(self, keys: Iterable[str]) -> list[str]:
        """Return which of a message's reply keys the webhook sends itself."""
        return list(keys) if not self.loop_here else [k for k in keys if k in self.keys]

    def release(self, sent: Iterable[str] | None = None) -> None:
        """Wake the loops unless every held row is among `sent` (None: nothing was)."""
        left = self.keys - set(sent or ())
        self.keys = set()
        if left:
            _tell_local([Lane.URGENT])  # crisis rows


_held: ContextVar[HeldWakes | None] = ContextVar("tc_held_wakes", default=None)


@contextlib.contextmanager
def hold_wakes() -> Iterator[HeldWakes]:
    """Within: crisis rows written are the caller's to send (see HeldWakes). The caller
    must `release` after its send; if it raises here, or never releases, they are woken."""
    held = HeldWakes()
    token = _held.set(held)
    try:
        yield held
    except BaseException:
        held.release()
        raise
    finally:
        _held.reset(token)
        if held.keys:
            with contextlib.suppress(RuntimeError):  # no loop: nothing to wake later
                asyncio.get_running_loop().call_later(HELD_WAKE_FALLBACK, held.release)


async def notify_outbox(session: AsyncSession, *, crisis_key: str | None = None,
                        lane: Lane | None = None) -> None:
    """Wake the dispatch loops of `lane` (None: both), here and in other processes, when
    this transaction commits.

    `crisis_key` names a crisis row just written; inside `hold_wakes` it is held instead.
    """
    held = _held.get()
    if crisis_key is not None and held is not None and held.loop_here:
        held.keys.add(crisis_key)
    elif _local:
        session.info.setdefault(_LANES, set()).add(lane)
        if not event.contains(session.sync_session, "after_commit", _after_commit):
            event.listen(session.sync_session, "after_commit", _after_commit, once=True)
    if is_postgres(session):
        # The lane rides as the payload: repeats of one within a transaction fold into one.
        await session.exec(text(  # type: ignore[call-overload]
            f"NOTIFY {CHANNEL}, '{lane.value if lane is not None else ''}'"))


async def listen_outbox(engine: AsyncEngine, callback: Wake) -> None:
    """Call `callback` with the lane on every outbox notification until cancelled
    (PostgreSQL only)."""
    if not is_postgres(engine):
        return
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection

        def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            callback(Lane(payload) if payload in tuple(Lane) else None)

        await driver.add_listener(CHANNEL, heard)
        try:
            await asyncio.Event().wait()
        finally:
            await driver.remove_listener(CHANNEL, heard)
