"""GET /metrics after a small SMS journey: the figures add up, and no person shows in them."""

from __future__ import annotations

import re

from scheduler.dispatcher import dispatch
from storage.models import MessageKind, OutboxStatus
from tests.bot.conftest import PHONE, Enrolled, Stack, outbox

CRISIS = "I want to kill myself"
STRANGER = "+447700900999"
WRONG_CODE = "ABCDE-12345"
_SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (-?[0-9.e+]+)$')
_LABEL = re.compile(r'([a-z_]+)="([^"]*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Parse Prometheus text, checking every series was announced with HELP and TYPE."""
    helped: set[str] = set()
    typed: set[str] = set()
    samples: Samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed.add(line.split()[2])
        else:
            match = _SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            assert name in helped and name in typed, f"{name} has no HELP/TYPE before it"
            key = (name, frozenset(_LABEL.findall(labels or "")))
            assert key not in samples, f"{key} twice"
            samples[key] = float(value)
    return samples


def get(samples: Samples, name: str, **labels: str) -> float:
    """Return one sample's value."""
    return samples[(name, frozenset(labels.items()))]


async def test_metrics_after_a_small_journey(stack: Stack, enrolled: Enrolled) -> None:
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
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    rows = await outbox(stack.engine, "sms")
    answers = [r for r in rows if r.kind in (MessageKind.REPLY, MessageKind.CRISIS)]
    crisis = [r for r in rows if r.kind == MessageKind.CRISIS]
    assert all(r.status == OutboxStatus.SENT for r in rows) and crisis

    assert get(samples, "throughcare_up") == 1
    assert get(samples, "throughcare_inbound_messages_total") == 5
    assert get(samples, "throughcare_inbound_messages", channel="sms") == 5
    assert get(samples, "throughcare_outbound_messages", status="sent", channel="sms") == \
        len(rows)
    assert get(samples, "throughcare_outbox_messages", status="sent") == len(rows)
    # Answers went at once (a second apart to one phone) except MENU's: 90 s, for the retry.
    name = "throughcare_answer_latency_seconds"
    assert get(samples, name, kind="reply", quantile="0.5") == 0
    assert get(samples, name, kind="reply", quantile="0.95") == 90
    assert get(samples, name, kind="crisis", quantile="0.95") == 0
    assert get(samples, f"{name}_samples", kind="reply") == len(answers) - len(crisis)
    assert get(samples, f"{name}_samples", kind="crisis") == len(crisis)
    assert get(samples, "throughcare_link_failures_last_hour") == 1
    assert get(samples, "throughcare_participants", status="active") == 1
    assert get(samples, "throughcare_identities", status="active", channel="sms") == 1
    assert get(samples, "throughcare_identities_stopped") == 0
    assert get(samples, "throughcare_last_send_timestamp_seconds") == \
        stack.clock.now.timestamp()
    # Nothing about a person: no number, name, code or words they sent.
    for private in (PHONE, PHONE[1:], STRANGER[1:], "Sam", enrolled.code, "kill", "MENU"):
        assert private not in response.text


async def test_latency_counts_only_the_last_hour(stack: Stack, enrolled: Enrolled) -> None:
    await stack.sms(enrolled.code)  # two replies: welcome and the consent question
    samples = parse((await stack.client.get("/metrics")).text)
    assert get(samples, "throughcare_answer_latency_seconds_samples", kind="reply") == 2
    stack.pause(3700)
    samples = parse((await stack.client.get("/metrics")).text)
    assert not any(name.startswith("throughcare_answer_latency") for name, _ in samples)
    assert get(samples, "throughcare_outbound_messages", status="sent", channel="sms") == 2
