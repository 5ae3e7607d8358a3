"""Enrolment refuses mistakes; `new-code` replaces a lost or expired code; people are told how."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from bot.enrol import (
    EnrolmentError,
    EnrolmentForm,
    check_mobile,
    check_release_date,
    enrol_checked,
    new_code,
)
from handlers.texts import t
from storage.crypto import development_secrets
from storage.db import session_scope
from storage.models import AuditEvent, Participant, ParticipantStatus
from tests.core.conftest import NOW, PHONE, Enrolled, Say

TODAY = date(2026, 11, 26)
MOBILE = "07400 123456"  # a real-shaped UK mobile (not the drama range)
DATA, BLIND = development_secrets()  # loading settings sets the process's keys: keep these
PRODUCTION = {"LOCAL_MODE": "false", "SECRET_KEY": "a-real-secret-for-this-test-only",
              "DATA_KEY": DATA, "BLIND_KEY": BLIND}


def london_today() -> date:
    """Return today's date where the CLI reckons it (the service zone)."""
    return datetime.now(ZoneInfo("Europe/London")).date()


def cli(db_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run the real `throughcare` CLI in process against this test's database."""
    base = {"DATABASE_URL": db_url, "LOCAL_MODE": "true"}  # as the suite runs: local mode
    return CliRunner().invoke(app, list(args), env={**base, **(env or {})})


def enroll(db_url: str, *extra: str, release: date | None = None,
           env: dict[str, str] | None = None) -> Result:
    """Run `throughcare enroll` for Sam, releasing in a month unless told otherwise."""
    when = (release or london_today() + timedelta(days=30)).isoformat()
    return cli(db_url, "enroll", "--prison", "HMP Test", "--name", "Sam", "--release-date",
               when, "--postcode", "ST3 2QH", *extra, env=env)


def one_line_refusal(result: Result, needle: str) -> None:
    """Assert exit 2 with one clear line on stderr naming the field, and no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_release_date_allows_a_week_of_late_enrolment() -> None:
    for back in (0, 1, 7):
        check_release_date(TODAY - timedelta(days=back), today=TODAY)
    check_release_date(TODAY + timedelta(days=200), today=TODAY)
    with pytest.raises(EnrolmentError) as err:
        check_release_date(TODAY - timedelta(days=8), today=TODAY)
    assert err.value.field == "release_date" and "2026-11-18" in err.value.message


@pytest.mark.parametrize("raw", ["07400 123456", "+44 7400 123456", "(07400) 123-456",
                                 "+447400123456"])
def test_uk_mobiles_are_accepted_as_e164(raw: str) -> None:
    assert check_mobile(raw, local_mode=False) == "+447400123456"


@pytest.mark.parametrize(
    "raw",
    ["12345", "hello", "020 7946 0000", "116 123", "0800 123 4567", "0300 123 4567",
     "070 1234 5678", "+33 6 12 34 56 78", "07400 12345", "07400 1234567"],
)
def test_anything_but_a_uk_mobile_is_refused(raw: str) -> None:
    with pytest.raises(EnrolmentError) as err:
        check_mobile(raw, local_mode=True)
    assert err.value.field == "phone"


@pytest.mark.parametrize("raw", ["07700 900000", "07700900123", "+447700900999"])
def test_drama_numbers_only_in_local_mode(raw: str) -> None:
    assert check_mobile(raw, local_mode=True).startswith("+447700900")
    with pytest.raises(EnrolmentError) as err:
        check_mobile(raw, local_mode=False)
    assert err.value.field == "phone" and "local mode" in err.value.message


def test_just_outside_the_drama_range_is_not_a_mobile() -> None:
    with pytest.raises(EnrolmentError):
        check_mobile("07700 901000", local_mode=True)


@pytest.mark.parametrize(
    ("extra", "release_back", "needle"),
    [
        ((), 8, "--release-date"),
        ((), 2500, "--release-date"),
        (("--phone", "12345"), 0, "--phone"),
        (("--phone", "01632 960123"), 0, "--phone"),
        (("--phone", "020 7946 0000"), 0, "--phone"),
        (("--phone", "116 123"), 0, "--phone"),
        (("--name", "  "), 0, "--name"),
        (("--channel", "fax"), 0, "--channel"),
    ],
)
def test_cli_refuses_each_mistake_in_one_line(db_url: str, extra: tuple[str, ...],
                                              release_back: int, needle: str) -> None:
    result = enroll(db_url, *extra, release=london_today() - timedelta(days=release_back))
    one_line_refusal(result, needle)
    as_json = enroll(db_url, *extra, "--json",
                     release=london_today() - timedelta(days=release_back))
    assert as_json.exit_code == 2
    out = json.loads(as_json.stdout)
    assert set(out) == {"error", "field"} and needle == "--" + out["field"].replace("_", "-")


def test_cli_accepts_a_release_a_week_ago(db_url: str) -> None:
    result = enroll(db_url, "--phone", MOBILE, "--json",
                    release=london_today() - timedelta(days=7))
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"participant_id", "link_code", "expires"}


def test_cli_drama_number_in_local_mode_but_not_in_production(db_url: str) -> None:
    assert enroll(db_url, "--phone", "07700 900123").exit_code == 0
    refused = enroll(db_url, "--phone", "07700 900124", env=PRODUCTION)
    one_line_refusal(refused, "--phone")
    assert "local mode" in refused.stderr
    assert enroll(db_url, "--phone", MOBILE, env=PRODUCTION).exit_code == 0


def test_cli_refuses_a_second_enrolment_of_the_same_phone(db_url: str) -> None:
    first = json.loads(enroll(db_url, "--phone", MOBILE, "--json").stdout)
    again = enroll(db_url, "--phone", "+44 7400 123456")
    one_line_refusal(again, f"already enrolled as participant {first['participant_id']}")
    as_json = json.loads(enroll(db_url, "--phone", MOBILE, "--json").stdout)
    assert as_json == {"error": f"already enrolled as participant {first['participant_id']}",
                       "field": "phone"}


async def test_a_deleted_participant_does_not_block_their_phone(engine: AsyncEngine) -> None:
    form = EnrolmentForm(prison="HMP Test", name="Sam", release_date=TODAY,
                         postcode="ST3 2QH", phone=MOBILE)
    async with session_scope(engine) as session:
        first = await enrol_checked(session, form, now=NOW, today=TODAY, local_mode=False)
    async with session_scope(engine) as session:
        with pytest.raises(EnrolmentError, match="already enrolled"):
            await enrol_checked(session, form, now=NOW, today=TODAY, local_mode=False)
        p = await session.get(Participant, first.participant_id)
        assert p is not None
        p.status = ParticipantStatus.DELETED
        session.add(p)
    async with session_scope(engine) as session:
        second = await enrol_checked(session, form, now=NOW, today=TODAY, local_mode=False)
    assert second.participant_id != first.participant_id


def test_cli_new_code_prints_a_fresh_code_and_audits_without_it(db_url: str) -> None:
    first = json.loads(enroll(db_url, "--json").stdout)
    result = cli(db_url, "new-code", "--participant", str(first["participant_id"]), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"participant_id", "link_code", "expires"}
    assert out["participant_id"] == first["participant_id"]
    assert out["link_code"] != first["link_code"] and out["expires"] == first["expires"]
    plain = cli(db_url, "new-code", "--participant", str(first["participant_id"]))
    assert plain.exit_code == 0 and "New link code for Sam" in plain.stdout


async def test_new_code_is_audited_without_the_code(engine: AsyncEngine,
                                                    enrolled: Enrolled) -> None:
    async with session_scope(engine) as session:
        issued = await new_code(session, participant_id=enrolled.participant_id, now=NOW)
    async with session_scope(engine) as session:
        rows = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "new_code"))).all()
    assert [(r.participant_id, r.detail) for r in rows] == [
        (enrolled.participant_id, {"voided": 1})]
    assert issued.link_code.replace("-", "") not in repr([r.model_dump() for r in rows])


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_new_code_for_unknown_participant(db_url: str, as_json: bool) -> None:
    result = cli(db_url, "new-code", "--participant", "999", *(["--json"] if as_json else []))
    if as_json:
        assert result.exit_code == 2
        assert json.loads(result.stdout) == {"error": "no participant 999",
                                             "field": "participant"}
    else:
        one_line_refusal(result, "--participant")


async def test_new_code_voids_the_old_one(engine: AsyncEngine, enrolled: Enrolled,
                                          say: Say) -> None:
    async with session_scope(engine) as session:
        issued = await new_code(session, participant_id=enrolled.participant_id, now=NOW)
    assert issued.expires == (NOW + timedelta(days=60)).date()  # released a week ago
    assert await say(enrolled.code, address="+447400123456") == [t("welcome.expired_code")]
    replies = await say(issued.link_code, address="+447400123456")
    assert replies[0] == t("welcome.linked", name="Sam")


async def test_no_new_code_for_a_deleted_participant(engine: AsyncEngine,
                                                     enrolled: Enrolled) -> None:
    async with session_scope(engine) as session:
        p = await session.get(Participant, enrolled.participant_id)
        assert p is not None
        p.status = ParticipantStatus.DELETED
        session.add(p)
    async with session_scope(engine) as session:
        with pytest.raises(EnrolmentError) as err:
            await new_code(session, participant_id=enrolled.participant_id, now=NOW)
    assert err.value.field == "participant"


@pytest.mark.parametrize("text", ["new code", "Code expired", "I lost my code",
                                  "my code doesn't work", "how do I get a code?",
                                  "NEED NEW CODE PLS", "forgot my code"])
async def test_a_stranger_asking_for_a_code_is_told_how(say: Say, text: str) -> None:
    (reply,) = await say(text, address="+447400123456")
    assert reply == t("welcome.new_code")
    assert "Recovery Champion or probation worker" in reply


async def test_wrong_and_expired_codes_say_who_can_help(enrolled: Enrolled, say: Say) -> None:
    (wrong,) = await say("ABCDE-FGHJK", address="+447400123456")
    (late,) = await say(enrolled.code, address="+447400123457", now=NOW + timedelta(days=400))
    for reply in (wrong, late):
        assert "Recovery Champion or probation worker" in reply and "new" in reply


async def test_enrolled_phone_asking_for_a_code_is_told_how_to_link_without_one(
        enrolled: Enrolled, say: Say) -> None:
    replies = await say("lost my code", address=PHONE)
    assert replies == [t("welcome.prove")]  # nothing personal until they prove it is them
    assert (await say("Sam November", address=PHONE))[0] == t("welcome.linked", name="Sam")


async def test_a_code_inside_a_sentence_links(enrolled: Enrolled, say: Say) -> None:
    replies = await say(f"hi my new code is {enrolled.code}", address="+447400123456")
    assert replies[0] == t("welcome.linked", name="Sam")
