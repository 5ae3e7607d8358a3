"""GET /metrics after real traffic: Prometheus text its own parser reads, figures that add up,
webhooks timed, provider errors counted by code, and no person in any of it."""

from __future__ import annotations

import re
from datetime import date

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler import telemetry
from scheduler.dispatcher import dispatch
from storage.db import session_scope
from storage.models import MessageKind, OutboxStatus
from storage.participants import enrol
from tests.bot.conftest import NOW, PHONE, Enrolled, Stack, outbox

CRISIS = "I want to kill myself"
STRANGER = "+447700900999"
WRONG_CODE = "ABCDE-12345"
LATENCY = "throughcare_webhook_latency_seconds"
ERRORS = "throughcare_provider_errors_total"
# What a label may hold: our words (channels, kinds, statuses, lanes), a route, a number that
# is a bucket bound or quantile, or an error code of at most six digits. Never a phone number.
LABEL_VALUE = re.compile(r"[a-z_]{1,20}|(/[a-z]+){2}|[0-9]{1,6}|[0-9]+\.[0-9]+|\+Inf")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Parse /metrics with prometheus_client's own parser: family types, and every sample."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"{key} twice"
            samples[key] = sample.value
    return types, samples


def get(samples: Samples, name: str, **labels: str) -> float:
    """Return one sample's value."""
    return samples[(name, frozenset(labels.items()))]


async def scrape(stack: Stack) -> Samples:
    """Fetch /metrics, check it is well-formed and its labels plain; return the samples."""
    response = await stack.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    _types, samples = parse(response.text)
    for _name, labels in samples:
        for key, value in labels:
            assert LABEL_VALUE.fullmatch(value), f"label {key}={value!r}"
    return samples


def errors_counted(samples: Samples, code: str) -> float:
    """Return this process's provider error count for an SMS code (0 before the first)."""
    return samples.get((ERRORS, frozenset({("channel", "sms"), ("code", code)})), 0.0)


async def test_metrics_after_a_small_journey(stack: Stack, enrolled: Enrolled) -> None:
    before = await scrape(stack)
    await stack.sms(enrolled.code)
    await stack.sms("YES")
    await stack.sms(CRISIS)
    await stack.sms(WRONG_CODE, number=STRANGER)
    stack.twilio.fail_next(20500)  # this reply waits for the worker's retry
    assert await stack.sms("MENU") == []
    stack.pause(90)
    channels = stack.app.state.channels
    await dispatch(stack.engine, channels.senders, now=stack.clock.now, limiter=channels.limiter)

    response = await stack.client.get("/metrics")
    types, samples = parse(response.text)
    rows = await outbox(stack.engine, "sms")
    replies = [r for r in rows if r.kind == MessageKind.REPLY]
    crisis = [r for r in rows if r.kind == MessageKind.CRISIS]
    assert all(r.status == OutboxStatus.SENT for r in rows) and crisis and replies
    assert types[LATENCY] == "histogram" and types["throughcare_provider_errors"] == "counter"
    assert types["throughcare_messages_out"] == "gauge"

    assert get(samples, "throughcare_up") == 1
    assert get(samples, "throughcare_messages_in", channel="sms") == 5
    assert get(samples, "throughcare_messages_out", channel="sms", kind="reply",
               status="sent") == len(replies)
    assert get(samples, "throughcare_messages_out", channel="sms", kind="crisis",
               status="sent") == len(crisis)
    # Every text came in through the webhook, and each was timed there.
    assert get(samples, f"{LATENCY}_count", route="/sms/inbound") == 5
    assert get(samples, f"{LATENCY}_bucket", route="/sms/inbound", le="+Inf") == 5
    assert get(samples, f"{LATENCY}_sum", route="/sms/inbound") > 0
    assert get(samples, f"{LATENCY}_count", route="/sms/status") == 0
    # Twilio's 500 was counted by its code; the retry sent it, so no kept row carries it.
    assert errors_counted(samples, "500") == errors_counted(before, "500") + 1
    assert not any(name == "throughcare_outbox_provider_errors" for name, _ in samples)
    # Answers went at once (a second apart to one phone) except MENU's: 90 s, for the retry.
    name = "throughcare_answer_latency_seconds"
    assert get(samples, name, kind="reply", quantile="0.5") == 0
    assert get(samples, name, kind="reply", quantile="0.95") == 90
    assert get(samples, name, kind="crisis", quantile="0.95") == 0
    assert get(samples, f"{name}_samples", kind="reply") == len(replies)
    assert get(samples, f"{name}_samples", kind="crisis") == len(crisis)
    assert get(samples, "throughcare_link_failures_last_hour") == 1
    assert get(samples, "throughcare_participants", status="active") == 1
    assert get(samples, "throughcare_identities", status="active", channel="sms") == 1
    assert get(samples, "throughcare_identities_stopped") == 0
    assert get(samples, "throughcare_last_send_timestamp_seconds") == \
        stack.clock.now.timestamp()
    for lane in ("urgent", "bulk"):
        assert get(samples, "throughcare_queue_depth", lane=lane) == 0
        assert get(samples, "throughcare_dispatch_lag_seconds", lane=lane) == 0
    # Nothing about a person: no number, name, code or words they sent.
    for private in (PHONE, PHONE[1:], STRANGER[1:], "Sam", enrolled.code, "kill", "MENU"):
        assert private not in response.text


async def test_latency_counts_only_the_last_hour(stack: Stack, enrolled: Enrolled) -> None:
    await stack.sms(enrolled.code)  # two replies: welcome and the consent question
    samples = await scrape(stack)
    assert get(samples, "throughcare_answer_latency_seconds_samples", kind="reply") == 2
    stack.pause(3700)
    samples = await scrape(stack)
    assert not any(name.startswith("throughcare_answer_latency") for name, _ in samples)
    assert get(samples, "throughcare_messages_out", channel="sms", kind="reply",
               status="sent") == 2


async def test_provider_errors_by_code_and_no_person_in_any_label(stack: Stack) -> None:
    name, phone, words = "Zebulon Quartermaine", "+447700900777", "marmalade xylophone"
    async with session_scope(stack.engine) as session:
        _person, code = await enrol(session, prison_name="HMP Test", display_name=name,
                                    release_date=date(2026, 11, 19), release_postcode="ST3 2QH",
                                    now=NOW, phone=None)
    await stack.sms(code, number=phone)
    await stack.sms("YES", number=phone)
    before = await scrape(stack)
    stack.twilio.fail_next(30400)  # a code we have no words for: "twilio 30400: rejected"
    assert await stack.sms(f"{words} {phone}", number=phone) == []
    sid = next(m["sid"] for m in stack.twilio.messages if m["to"] == phone)
    assert (await stack.twilio.report(sid, "undelivered", error_code=30007)).status_code == 200
    stack.twilio.fail_next(21610)  # unsubscribed: the number is stopped
    assert await stack.sms("MENU", number=phone) == []

    response = await stack.client.get("/metrics")
    samples = await scrape(stack)
    assert errors_counted(samples, "30400") == errors_counted(before, "30400") + 1
    assert errors_counted(samples, "21610") == errors_counted(before, "21610") + 1
    # The kept rows say the same, and the status callback's code too (it is no send of ours).
    for code_seen in ("30400", "21610", "30007"):
        assert get(samples, "throughcare_outbox_provider_errors", channel="sms",
                   code=code_seen) == 1
    assert get(samples, f"{LATENCY}_count", route="/sms/status") == 1
    assert get(samples, "throughcare_identities", status="opted_out", channel="sms") == 1
    for private in (name, "Zebulon", "Quartermaine", phone, phone[1:], "07700900777",
                    "marmalade", "xylophone", code):
        assert private not in response.text


async def test_only_webhooks_are_timed_each_by_its_route(stack: Stack) -> None:
    assert (await stack.telegram_update(stack.user.text("hello"))).status_code == 200
    await stack.client.get("/healthz")
    samples = await scrape(stack)
    assert get(samples, f"{LATENCY}_count", route="/telegram/webhook") == 1
    routes = {dict(labels)["route"] for name, labels in samples if name == f"{LATENCY}_count"}
    assert routes == {"/sms/inbound", "/sms/status", "/telegram/webhook", "/voice/inbound",
                      "/voice/menu", "/voice/crisis", "/voice/code", "/voice/town"}


def test_error_codes_become_labels_only_when_short_plain_and_few(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_codes", set())
    assert telemetry.code_label("21610") == "21610"
    assert telemetry.code_label("chat_id") == "chat_id"
    assert telemetry.code_label(None) == "none"
    for odd in ("+447700900123", "447700900123", "Sam Smith", "x" * 40, "21610; drop"):
        assert telemetry.code_label(odd) == "other"
    for n in range(telemetry.MAX_CODES):
        telemetry.code_label(str(n))
    assert telemetry.code_label("99999") == "other"  # past the cap
    assert telemetry.code_label("21610") == "21610"  # one already labelled keeps its label
