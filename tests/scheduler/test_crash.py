"""SIGKILL the worker in the middle of a 2,000-recipient broadcast; restart; each sent once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_scope
from storage.models import MessageKind, OutboxStatus, Priority
from storage.outbox_q import enqueue_many
from tests.scheduler.conftest import rows
from tests.scheduler.fake_provider import FakeProviderServer

ROOT = Path(__file__).resolve().parents[2]
BASE = datetime(2025, 6, 3, 11, 0, tzinfo=UTC)  # noon in London: no quiet hours
N = 2000


def _start(db_url: str, fake: str, epoch: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.scheduler.crash_worker", "--db", db_url, "--fake", fake,
         "--base", BASE.isoformat(), "--epoch", repr(epoch), "--rate", "1000", "--lease", "1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_sigkill_mid_broadcast_then_restart_sends_each_exactly_once(
    engine: AsyncEngine, db_url: str
) -> None:
    async with session_scope(engine) as session:
        await enqueue_many(session, [
            {"channel": "sms", "address": f"+4477009{i:05d}", "body": "Meeting moved to 7pm",
             "dedupe_key": f"bc:1:{i}", "kind": str(MessageKind.BROADCAST),
             "priority": Priority.BULK, "broadcast_id": 1} for i in range(N)], now=BASE)
    epoch = time.time()
    with FakeProviderServer() as fake:
        t0 = time.monotonic()
        fake.watermark = N // 3
        first = _start(db_url, fake.url, epoch)
        await asyncio.to_thread(fake.reached.wait, 20)
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        first.send_signal(signal.SIGKILL)
        first.wait(5)
        if first.stderr is not None:
            first.stderr.close()
        killed_at = fake.total()
        assert 0 < killed_at < N  # really killed mid-way
        left_claimed = [r for r in await rows(engine) if r.status == OutboxStatus.SENDING]
        assert left_claimed  # the dead worker left claimed rows for the restart to recover
        second = _start(db_url, fake.url, epoch)
        t1 = time.monotonic()
        _, err = second.communicate(timeout=40)
        print(f"first {t1 - t0:.1f}s, restart {time.monotonic() - t1:.1f}s")
        assert second.returncode == 0, err.decode()[-2000:]
        sends = dict(fake.sends)
    assert sorted(sends) == sorted(r.id for r in await rows(engine))
    assert set(sends.values()) == {1}, {k: v for k, v in sends.items() if v != 1}
    outbox = await rows(engine)
    assert {r.status for r in outbox} == {OutboxStatus.SENT}
    assert all(r.provider_id == f"SM{r.id}" for r in outbox)
