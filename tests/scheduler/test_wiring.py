"""Wiring: TWILIO_MPS and TELEGRAM_MPS reach the limiter; no SQL in the scheduler."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.serve import build_limiter, run_worker_once
from scheduler.ratelimit import DEFAULT_LIMITS
from storage.models import OutboxStatus
from tests.scheduler.conftest import NOON, put, rows

ROOT = Path(__file__).resolve().parents[2]
QUERY_NAMES = {"select", "update", "delete", "insert", "text", "func", "col", "and_", "or_"}


def test_twilio_mps_sets_the_sms_limit_and_telegram_keeps_its_own(db_url: str) -> None:
    limiter = build_limiter(Settings(database_url=db_url, twilio_mps=25))
    assert limiter.limits["sms"].per_second == 25.0
    assert limiter.limits["sms"].count_segments is True  # still counted in segments
    assert limiter.limits["telegram"] == DEFAULT_LIMITS["telegram"]
    assert DEFAULT_LIMITS["sms"].per_second == 1.0  # the shared default is not changed


def test_telegram_mps_sets_the_telegram_limit_and_keeps_one_a_second_a_chat(
    db_url: str,
) -> None:
    limiter = build_limiter(Settings(database_url=db_url, telegram_mps=200))
    assert limiter.limits["telegram"].per_second == 200.0
    assert limiter.limits["telegram"].per_chat_per_second == 1.0
    assert DEFAULT_LIMITS["telegram"].per_second == 30.0


async def test_worker_once_sends_at_the_configured_sms_rate(
    engine: AsyncEngine, db_url: str
) -> None:
    for i in range(30):
        await put(engine, f"bc{i}", address=f"+4477009{i:05d}")
    settings = Settings(database_url=db_url, twilio_mps=300, telegram_bot_token=None,
                        twilio_account_sid=None)
    # At the default 1 a second, 30 texts take half a minute; at 300 a second, a moment.
    out = await asyncio.wait_for(run_worker_once(settings, now=NOON, dry_run=False), 10)
    assert out["dispatch"]["sent"] == 30
    assert {r.status for r in await rows(engine)} <= {OutboxStatus.SENT, OutboxStatus.DELIVERED}


def test_scheduler_holds_no_sql() -> None:
    offenders = []
    for path in sorted((ROOT / "scheduler").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "sqlalchemy", "sqlmodel"
            ):
                names = {a.name for a in node.names} & QUERY_NAMES
                offenders += [f"{path.name}:{node.lineno} imports {n}" for n in sorted(names)]
            if isinstance(node, ast.Attribute) and node.attr in ("exec", "execute"):
                offenders.append(f"{path.name}:{node.lineno} runs .{node.attr}()")
    assert offenders == []
