"""The command line as a Champion and a participant would use it, in real subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import _register_subapps, app

ROOT = Path(__file__).resolve().parents[2]
# Enrolment refuses a release more than a week gone, so the tests release a month ahead.
RELEASE = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()


def run_cli(db_url: str, *args: str, stdin: str | None = None,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `throughcare` with this test's database."""
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONWARNINGS": "ignore"}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True,
        text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )


def test_enrol_then_chat_journey(db_url: str) -> None:
    demo = run_cli(db_url, "demo")
    assert demo.returncode == 0, demo.stderr
    assert re.search(r"^champion@example\.org \S+$", demo.stdout, re.MULTILINE)
    assert re.search(r"^coordinator@example\.org \S+$", demo.stdout, re.MULTILINE)
    enrol = run_cli(db_url, "enroll", "--prison", "HMP Demo", "--name", "Sam",
                    "--release-date", RELEASE, "--postcode", "ST3 2QH",
                    "--phone", "+447700900123", "--json")
    assert enrol.returncode == 0, enrol.stderr
    out = json.loads(enrol.stdout)
    assert isinstance(out["participant_id"], int)
    code = out["link_code"]
    chat = run_cli(db_url, "chat", "--channel", "sms", "--from", "+447700900123",
                   stdin=f"{code}\nYES\nMEETINGS ST3 2QH\n")
    assert chat.returncode == 0, chat.stderr
    text = chat.stdout
    assert "welcome" in text.lower()
    assert "Is that OK? Reply YES" in text
    after = text.split("Meetings near", 1)[1]
    miles = [float(m) for m in re.findall(r"([\d.]+) miles", after)]
    assert len(miles) >= 3 and miles == sorted(miles)
    assert len(re.findall(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Today|Tomorrow)\b.*\d(am|pm)",
                          after)) >= 3


def test_chat_on_telegram_shows_buttons(db_url: str) -> None:
    enrol = run_cli(db_url, "enroll", "--prison", "HMP Demo", "--name", "Jo",
                    "--release-date", RELEASE, "--postcode", "stoke", "--channel",
                    "telegram", "--json")
    code = json.loads(enrol.stdout)["link_code"]
    chat = run_cli(db_url, "chat", "--channel", "telegram", "--from", "123456",
                   stdin=f"/start {code.replace('-', '')}\n")
    assert chat.returncode == 0, chat.stderr
    assert "[Yes, that is OK] [No thanks]" in chat.stdout


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"DATABASE_URL": "mysql://nope/x"}, "DATABASE_URL"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"PUBLIC_BASE_URL": "ftp://x"}, "PUBLIC_BASE_URL"),
        ({"LOCAL_MODE": "false"}, "SECRET_KEY"),
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_AUTH_TOKEN"),
    ],
)
def test_invalid_config_is_one_clear_line_and_exit_2(db_url: str, env: dict[str, str],
                                                     setting: str) -> None:
    result = run_cli(db_url, "db", "upgrade", extra_env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--release-date", "20/11/2026", "--postcode", "ST3 2QH"], "--release-date"),
        (["--release-date", RELEASE, "--postcode", "ZZ99 9ZZ"], "--postcode"),
        (["--release-date", RELEASE, "--postcode", "ST3 2QH", "--phone", "hello"],
         "--phone"),
    ],
)
def test_enrol_bad_input_is_refused_clearly(db_url: str, args: list[str], needle: str) -> None:
    result = run_cli(db_url, "enroll", "--prison", "HMP Demo", "--name", "Sam", *args)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["enroll", "chat", "demo", "run", "web", "worker", "db",
                                     "meetings", "staff"])
def test_every_command_has_help(command: str) -> None:
    _register_subapps()
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
