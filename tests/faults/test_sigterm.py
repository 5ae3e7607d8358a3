"""SIGTERM: the worker stops claiming, lets the sends on the wire finish and be recorded,
hands back what it claimed but had not sent, and exits 0. Nothing is left `sending`,
nothing is sent twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import make_engine
from storage.models import MessageKind, OutboxStatus
from tests.bot.conftest import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER
from tests.fakes.twilio_api import FakeTwilio
from tests.scheduler.conftest import put, rows

ROOT = Path(__file__).resolve().parents[2]
N = 20
SLOW = 2.0  # seconds the fake Twilio takes over each answer: sends are on the wire at SIGTERM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _until(check: object, seconds: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_sigterm_finishes_sends_on_the_wire_and_hands_back_the_rest(
    engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    for i in range(N):
        await put(engine, f"r{i}", now=now, address=f"+4477009{i:05d}", kind=MessageKind.REPLY)
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, our_number=OUR_NUMBER, answer_delay=SLOW)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(twilio.app, host="127.0.0.1", port=port,
                                           log_level="warning", log_config=None))
    serving = asyncio.create_task(server.serve())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url,
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_FROM_NUMBER": OUR_NUMBER, "TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}",
           "TWILIO_MPS": "50", "SHUTDOWN_GRACE_SECONDS": "10", "LOG_LEVEL": "INFO"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    worker = _start(env, tmp_path)
    try:
        await _until(lambda: len(twilio.requests) >= 1, 60, worker)  # sends on the wire
        on_wire = len(twilio.requests)
        worker.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        _out, err = await asyncio.to_thread(worker.communicate, timeout=30)
        took = time.monotonic() - t0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        server.should_exit = True
        await serving
    log = err.decode()
    assert worker.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-4000:]
    print(f"{on_wire} on the wire at SIGTERM, {len(twilio.messages)} sent, stopped in "
          f"{took:.1f}s")
    check = make_engine(db_url)
    try:
        outbox = await rows(check)
    finally:
        await check.dispose()
    sent_to = [m["to"] for m in twilio.messages]
    assert len(sent_to) == len(set(sent_to)) >= 1  # nothing twice
    statuses = {r.address: r.status for r in outbox}
    assert OutboxStatus.SENDING not in statuses.values(), statuses
    assert {a for a, s in statuses.items() if s == OutboxStatus.SENT} == set(sent_to)
    assert {a for a, s in statuses.items() if s == OutboxStatus.QUEUED} \
        == {r.address for r in outbox} - set(sent_to)
    assert all(r.attempts == 0 for r in outbox if r.status == OutboxStatus.QUEUED)
