"""The database is not there at start: `run`, `web` and `worker` wait for it with backoff,
one line a try, and exit 3 after the last; other commands fail at once in one line."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.runtime import EXIT_DATABASE_UNREACHABLE, DatabaseUnreachable, wait_for_database
from bot.serve import serve
from storage.db import make_engine
from tests.bot.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_start_waits_for_a_database_that_comes_up_between_tries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "not-mounted-yet"
    url = f"sqlite:///{folder}/throughcare.db"
    settings = make_settings(database_url=url, db_start_retries=5, db_start_wait=1.0)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:  # time passes; on the second pause, it mounts
        pauses.append(seconds)
        if len(pauses) == 2:
            folder.mkdir()

    engine = make_engine(url)
    try:
        with caplog.at_level(logging.INFO, logger="bot.runtime"):
            await wait_for_database(engine, settings, sleep=sleep, jitter=lambda: 0.5)
    finally:
        await engine.dispose()
    assert pauses == [1.0, 2.0]  # doubling
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.runtime"]
    assert lines == [
        f"database not reachable at SQLite file {folder}/throughcare.db (OperationalError: "
        "unable to open database file): retrying in 1.0s (try 2 of 6)",
        f"database not reachable at SQLite file {folder}/throughcare.db (OperationalError: "
        "unable to open database file): retrying in 2.0s (try 3 of 6)",
        f"database reachable at SQLite file {folder}/throughcare.db (try 3 of 6)",
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_start_gives_up_after_the_last_try_and_pauses_stay_within_30s(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/never/throughcare.db"
    settings = make_settings(database_url=url, db_start_retries=7, db_start_wait=1.0)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    engine = make_engine(url)
    try:
        with pytest.raises(DatabaseUnreachable) as caught:
            await wait_for_database(engine, settings, sleep=sleep, jitter=lambda: 1.0)
    finally:
        await engine.dispose()
    assert pauses == pytest.approx([1.2, 2.4, 4.8, 9.6, 19.2, 36.0, 36.0])  # 30 s, +20% jitter
    assert str(caught.value).startswith(
        f"database not reachable at SQLite file {tmp_path}/never/throughcare.db after 8 tries")
    assert "\n" not in str(caught.value)


def test_web_retries_then_exits_3_one_line_a_try(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DB_START_RETRIES": "2",
           "DB_START_WAIT": "0.05",
           "DATABASE_URL": f"postgresql://throughcare:hunter2@127.0.0.1:{port}/throughcare"}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "web", "--port", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90,
                          check=False)
    assert done.returncode == EXIT_DATABASE_UNREACHABLE == 3, done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    tries = [json.loads(line)["message"] for line in lines[:-1] if "not reachable" in line]
    assert len(tries) == 2, done.stderr
    for n, message in enumerate(tries, start=2):
        assert message.startswith(f"database not reachable at 127.0.0.1:{port} (")
        assert message.endswith(f"(try {n} of 3)")
    assert lines[-1].startswith(f"database not reachable at 127.0.0.1:{port} after 3 tries")
    assert len(lines) == 3, done.stderr  # nothing else: no trace, no second opinion


@pytest.mark.parametrize("web", [False, True], ids=["worker", "run"])
async def test_worker_and_run_wait_then_give_up(
    tmp_path: Path, web: bool, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()
    settings = make_settings(
        database_url=f"postgresql://throughcare:hunter2@127.0.0.1:{port}/throughcare",
        db_start_retries=1, db_start_wait=0.01)
    with caplog.at_level(logging.INFO), pytest.raises(DatabaseUnreachable):
        await serve(settings, host="127.0.0.1", port=_free_port(), web=web, worker=True)
    tried = [r for r in caplog.records if "not reachable" in r.getMessage()]
    assert len(tried) == 1 and tried[0].getMessage().endswith("(try 2 of 2)")
    assert "hunter2" not in caplog.text and "Traceback" not in caplog.text
