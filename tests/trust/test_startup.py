"""Start-up when the outside world is down: Telegram unreachable, or the database stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.channels.telegram import SECRET_HEADER
from bot.serve import serve
from tests.bot.conftest import ACCOUNT_SID, AUTH_TOKEN, PHONE, WEBHOOK_SECRET, make_settings
from tests.fakes.twilio_api import FakeTwilio

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    """Return a loopback port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until_up(client: httpx.AsyncClient, task: asyncio.Task[None]) -> None:
    """Wait for the server to answer /healthz (it is starting in this same event loop)."""
    for _ in range(400):
        assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.025)
    raise AssertionError("the server did not start")


async def test_telegram_unreachable_keeps_sms_and_console(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed, port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(database_url=db_url, public_base_url=base,
                             telegram_api_base_url=f"http://127.0.0.1:{closed}",
                             twilio_api_base_url=f"http://127.0.0.1:{closed}")
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(serve(settings, host="127.0.0.1", port=port, web=True,
                                     worker=True))
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            await _until_up(client, task)
            twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{base}/sms/inbound",
                                client=client)
            response = await twilio.text_from(PHONE, "MENU")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/xml")
            assert (await client.get("/staff/login")).status_code == 200
            update = await client.post("/telegram/webhook", json={"update_id": 1},
                                       headers={SECRET_HEADER: WEBHOOK_SECRET})
            assert update.status_code == 503  # Telegram keeps it and sends it again
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "telegram unreachable at start-up (NetworkError)" in caplog.text


@pytest.mark.parametrize("command", [["db", "upgrade"], ["worker", "--once"]])
def test_database_down_is_one_line(tmp_path: Path, command: list[str]) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "DATABASE_URL": f"postgresql://throughcare:hunter2@127.0.0.1:{port}/throughcare"}
    done = subprocess.run([sys.executable, "-m", "bot.cli", *command], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"database error at 127.0.0.1:{port}:")
    assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr
