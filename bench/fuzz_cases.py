"""The requests bench.fuzz sends, drawn by hypothesis: hostile ones and ordinary ones.

A `Case` names a webhook (SMS or WhatsApp inbound, the status callback, Telegram) and carries
form pairs or a raw body, a content type, and whether it is signed (or has the right Telegram
secret). Hostile values: random Unicode, control characters and NULs, fields near the size
limits (MAX_FIELD, the 64 KiB body limit), odd ErrorCodes and statuses, over-long sids,
numbers that are not numbers, deep and duplicate-keyed JSON, huge integers, bad locations,
percent-encoding that is not UTF-8, wrong content types. About a quarter of the cases are what
linked people really send (from their numbers and chats, words of the menu and the tools),
so the conversation states move while the hostile ones arrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

FORM = "application/x-www-form-urlencoded"
NEW_SID = "\ue000new"  # replaced when sent: a fresh MessageSid
SENT_SID = "\ue000sent"  # replaced when sent: the sid of a message Twilio has sent for us
NEW_UPDATE = -1  # replaced when sent: a fresh update_id
CRISIS = "I want to kill myself"
SCRIPT = ("MENU", "CHECKIN", "7", "3", "5", "SKIP", "BACK", "CBA", "Save money for my kids",
          "URGE", "NEXT", "DONE", "LINK", "MEETINGS ST3 2QH", "MEETINGS", "MORE", "SAVE 1", "1",
          "2", "YES", "NO", "HELP", "STOP", "START", "PLAN", "MYDATA", "WENT", "CYMRAEG",
          "ENGLISH", CRISIS, "I took too many pills", "hello there", "thanks", "DISCREET",
          "REMIND", "WHATSAPP", "", "ok", "Sam January", "lost my code")
SMS_FIELDS = ("From", "Body", "MessageSid", "SmsSid", "To", "AccountSid", "NumMedia",
              "MessageType", "WaId", "ProfileName")
STATUS_FIELDS = ("MessageSid", "SmsSid", "MessageStatus", "ErrorCode", "To", "From")
CONTENT_TYPES = (FORM, FORM, FORM, FORM, FORM, FORM, FORM, FORM, "application/json",
                 "multipart/form-data", "multipart/form-data; boundary=xyz", "text/plain",
                 FORM + "; charset=latin-1", "", "application/x-www-form-urlencoded\x00")
# Any character a form or JSON can carry (not lone surrogates, which no encoder sends).
CHARS = st.characters(exclude_categories=["Cs"])
CONTROL = st.text(st.sampled_from(
    "\x00\x01\x08\x0b\x0c\x1b\x7f\x85\u200b\u200e\u202e\u2028\ufeff\ufffe\n\r\t 9"), max_size=30)
ODD = st.sampled_from(["", " ", "0", "-1", "²³", "١٢٣", "1e9", "NaN", "30003\x00", "+44 7700",
                       "07700 900123", "SM" + "f" * 4000, "whatsapp:", "whatsapp:+", "null",
                       "%00", "\\u0000", "<Response/>", "'; DROP TABLE participant;--",
                       "{{1}}", "%s%s%n", "\u202eSTOP", "STOP\x00", "ＳＴＯＰ", "ȿ" * 300])
HOSTILE = st.one_of(
    st.text(CHARS, max_size=60), CONTROL, ODD,
    st.integers(min_value=4_000, max_value=70_000).map(lambda n: "9" * n),  # MAX_FIELD, 64 KiB
    st.integers(min_value=100, max_value=25_000).map(lambda n: "A\x00é" * (n // 3)),
    st.tuples(st.sampled_from(SCRIPT), CONTROL).map("".join),
)
ERROR_CODES = st.one_of(
    st.sampled_from(["21610", "30003", "30005", "30006", "30007", "63016", "63003", "21211",
                     "21614", "0", "", "-1", "999999", "1234567", "٣٠٠٠٣", "3e4", " 30003",
                     "0x7543", "30003\x00", "+1"]),
    st.integers(min_value=-10**20, max_value=10**20).map(str), HOSTILE)
STATUSES = st.one_of(st.sampled_from(
    ["queued", "sending", "sent", "delivered", "read", "undelivered", "failed", "FAILED",
     "Delivered", "accepted", "scheduled", "canceled", "", "failed\x00"]), HOSTILE)
SIDS = st.one_of(st.just(NEW_SID), HOSTILE, st.integers(min_value=0, max_value=80).map(
    lambda n: "SM" + "0123456789abcdef"[n % 16] * n), st.just("MM" + "a" * 32))
BIG = st.one_of(st.integers(min_value=-10**30, max_value=10**30),
                st.sampled_from([0, -1, 2**31, 2**53, 2**53 + 1, 2**63, 10**30, -10**30]))
JSON_LEAF = st.one_of(st.none(), st.booleans(), BIG, st.floats(), st.text(CHARS, max_size=30))
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(CHARS, max_size=10), inner, max_size=4)),
    max_leaves=20)
PERCENT = st.integers(0, 99)
# Below this PERCENT draw a case is ordinary: hypothesis's draws lean high (it mutates
# what it drew before), so this gives about a quarter.
ORDINARY = 30
ONE_IN = {n: st.integers(0, n - 1) for n in (4, 5, 10, 20, 25, 30)}
BODIES = st.one_of(HOSTILE, st.sampled_from(SCRIPT))
EXTRA_SMS = st.dictionaries(st.one_of(st.sampled_from(SMS_FIELDS), st.text(CHARS, max_size=12)),
                            HOSTILE, max_size=4)
EXTRA_STATUS = st.dictionaries(st.one_of(st.sampled_from(STATUS_FIELDS),
                                         st.text(CHARS, max_size=12)),
                               st.one_of(HOSTILE, SIDS), max_size=4)
RAW_FORMS = st.sampled_from([b"Body=%ff%fe%00&From=%2B447700900123&MessageSid=SM" + b"a" * 32,
                             b"%%%&&&===", b"&=&=&", b"From=%E2%82&Body=%",
                             b"a=" + b"%41" * 30_000, b"\xff\xfe\x00\x01"])
CONTENT = st.sampled_from(CONTENT_TYPES)
ORDINARY_STATUS = st.sampled_from(["sent", "delivered", "read", "failed", "undelivered"])
STATUS_TO = st.sampled_from(["+447700800001", "whatsapp:+447700800001"])
USUAL_CODES = st.sampled_from(["30003", "30005", "21610", "63016", "30006"])
FIRST_NAME = st.one_of(st.just("Sam"), HOSTILE)
MESSAGE_NUMBER = st.integers(1, 10**6)
MESSAGE_ID = st.one_of(MESSAGE_NUMBER, BIG)
DATE = st.one_of(st.just(1_700_000_000), BIG)
CHAT_TYPE = st.sampled_from(["private", "private", "private", "group", "channel", "x"])
FREE_TEXT = st.text(CHARS, max_size=10)
UPDATE_ID = st.one_of(st.just(NEW_UPDATE), BIG, st.text(CHARS, max_size=5))
TG_TEXT = st.one_of(HOSTILE, HOSTILE.map(lambda s: "/start " + s), JSON)
EXTRA_JSON = st.dictionaries(FREE_TEXT, JSON, max_size=3)
MEMBER = st.sampled_from(["kicked", "left", "?"])
TG_CONTENT = st.sampled_from(("application/json",) * 6 + (
    "text/plain", FORM, "", "application/json; charset=latin-1"))
DATA = st.one_of(HOSTILE, JSON)
DEPTH = st.integers(1, 40_000)
RAW_KEYS = st.lists(st.tuples(st.sampled_from(["update_id", "message", "x"]), JSON), max_size=5)
NUMBER = st.one_of(st.floats(), BIG, st.text(CHARS, max_size=10), st.none(),
                   st.sampled_from([91.0, -181.0, 1e308, 53.0]))


@dataclass(frozen=True)
class Cast:
    """Who writes in: linked numbers and chats, and strangers."""

    sms: tuple[str, ...]
    whatsapp: tuple[str, ...]
    chats: tuple[int, ...]
    strangers: tuple[str, ...]
    codes: tuple[str, ...] = ()  # link codes not yet used (mid link)


@dataclass(frozen=True)
class Case:
    """One request to send: which webhook, what it carries, and how it is signed."""

    webhook: str  # "sms", "whatsapp", "status" or "telegram"
    ordinary: bool  # what a linked person (or Twilio) really sends
    pairs: tuple[tuple[str, str], ...] = ()  # a form, duplicate keys allowed
    raw: bytes | None = None  # a body sent as it is, instead of the pairs or `update`
    update: Any = None  # Telegram JSON (NEW_UPDATE as its update_id gets a fresh one)
    content_type: str = FORM
    signed: bool = True  # signed as Twilio signs, or with the right Telegram secret


def _twilio_form(sender: str, body: str, sid: str, *, whatsapp: bool) -> dict[str, str]:
    form = {"SmsSid": sid, "NumMedia": "0", "SmsStatus": "received", "Body": body,
            "To": "+447700900001", "MessageSid": sid, "AccountSid": "AC" + "01" * 16,
            "From": sender, "ApiVersion": "2010-04-01"}
    if whatsapp:
        form.update(To="whatsapp:+447700900002", From="whatsapp:" + sender,
                    WaId=sender.lstrip("+"), ProfileName="Sam", MessageType="text")
    return form


@dataclass(frozen=True)
class Senders:
    """The cast's strategies, built once (hypothesis checks a strategy on its first use)."""

    sms_ordinary: st.SearchStrategy[str]
    sms_any: st.SearchStrategy[str]
    wa_ordinary: st.SearchStrategy[str]
    wa_any: st.SearchStrategy[str]
    words: st.SearchStrategy[str]
    chats: st.SearchStrategy[int]
    tg_words: st.SearchStrategy[str]

    @classmethod
    def of(cls, cast: Cast) -> Senders:
        """Build the strategies for one cast."""
        return cls(
            st.sampled_from(cast.sms + cast.strangers[:2]),
            st.sampled_from(cast.sms + cast.strangers),
            st.sampled_from(cast.whatsapp + cast.strangers[:2]),
            st.sampled_from(cast.whatsapp + cast.strangers),
            st.sampled_from(SCRIPT + cast.codes),
            # An empty Telegram text is no message for the engine: not ordinary there.
            st.sampled_from(cast.chats), st.sampled_from(
                tuple(w for w in SCRIPT if w) + tuple(f"/start {c}" for c in cast.codes)
                + ("/start", "/menu")))


@st.composite
def inbound_cases(draw: Any, who: Senders, whatsapp: bool) -> Case:
    """An SMS or WhatsApp message: ordinary, or with hostile fields, keys and bodies."""
    webhook = "whatsapp" if whatsapp else "sms"
    if draw(PERCENT) < ORDINARY:
        sender = draw(who.wa_ordinary if whatsapp else who.sms_ordinary)
        form = _twilio_form(sender, draw(who.words), NEW_SID, whatsapp=whatsapp)
        return Case(webhook, True, tuple(form.items()))
    sender = draw(who.wa_any if whatsapp else who.sms_any)
    form = _twilio_form(sender, draw(BODIES), draw(SIDS), whatsapp=whatsapp)
    form.update(draw(EXTRA_SMS))
    return _shaped(draw, webhook, form)


def _shaped(draw: Any, webhook: str, form: dict[str, str]) -> Case:
    """Drop keys, repeat keys, change the content type, send raw bytes, or leave it unsigned."""
    pairs = [(k, v) for k, v in form.items() if draw(ONE_IN[20]) > 0]
    if draw(ONE_IN[10]) == 0:
        pairs += [(k, v + draw(CONTROL)) for k, v in pairs[:3]]  # duplicate keys, last wins
    # Percent-encoding that is not UTF-8, stray separators, a body near the size limit.
    raw = draw(RAW_FORMS) if draw(ONE_IN[20]) == 0 else None
    return Case(webhook, False, tuple(pairs), raw=raw, content_type=draw(CONTENT),
                signed=draw(ONE_IN[25]) > 0)


@st.composite
def status_cases(draw: Any) -> Case:
    """A status callback: for a message we sent, or for nothing, with hostile values."""
    form = {"SmsSid": SENT_SID, "MessageSid": SENT_SID, "AccountSid": "AC" + "01" * 16,
            "MessageStatus": draw(ORDINARY_STATUS), "To": draw(STATUS_TO),
            "From": "+447700900001", "ApiVersion": "2010-04-01"}
    if draw(ONE_IN[4]) == 0:
        form["ErrorCode"] = draw(USUAL_CODES)
    if draw(PERCENT) < ORDINARY:
        return Case("status", True, tuple(form.items()))
    form["MessageStatus"] = draw(STATUSES)
    form["ErrorCode"] = draw(ERROR_CODES)
    form.update(draw(EXTRA_STATUS))
    return _shaped(draw, "status", form)


def _message(draw: Any, chat_id: Any, text: Any) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": draw(FIRST_NAME)}
    return {"message_id": draw(MESSAGE_ID), "date": draw(DATE),
            "chat": {"id": chat_id, "type": draw(CHAT_TYPE), "first_name": "Sam"},
            "from": user, "text": text}


@st.composite
def telegram_cases(draw: Any, who: Senders) -> Case:
    """A Telegram update: ordinary, hostile in its values, any JSON, or no JSON at all."""
    kind = draw(PERCENT)
    chat = draw(who.chats)
    if kind < ORDINARY:
        text = draw(who.tg_words)
        user = {"id": chat, "is_bot": False, "first_name": "Sam"}
        update: dict[str, Any] = {"update_id": NEW_UPDATE, "message": {
            "message_id": draw(MESSAGE_NUMBER), "date": 1_764_000_000, "from": user,
            "chat": {"id": chat, "type": "private", "first_name": "Sam"}, "text": text}}
        if draw(ONE_IN[10]) == 0:
            del update["message"]["text"]
            update["message"]["location"] = {"latitude": 53.0, "longitude": -2.1}
        elif draw(ONE_IN[4]) == 0:  # a button pressed (data as our choices carry)
            message = update.pop("message")
            update["callback_query"] = {"id": str(draw(MESSAGE_NUMBER)), "from": message["from"],
                                        "chat_instance": "-7", "message": message,
                                        "data": text}
        return Case("telegram", True, update=update)
    if kind < ORDINARY + 45:
        return _hostile_update(draw, chat)
    return _raw_update(draw)


def _hostile_update(draw: Any, chat: int) -> Case:
    chat_id = draw(st.one_of(st.just(chat), BIG, FREE_TEXT))
    update_id = draw(UPDATE_ID)
    message = _message(draw, chat_id, draw(TG_TEXT))
    shape = draw(ONE_IN[5])
    if shape == 0:
        del message["text"]
        message["location"] = {"latitude": draw(NUMBER), "longitude": draw(NUMBER)}
    if shape == 1:
        del message["text"]
        message["caption"] = draw(HOSTILE)
    if shape == 2:
        message.update(draw(EXTRA_JSON))
    update: dict[str, Any] = {"update_id": update_id, "message": message}
    if shape == 3:
        update = {"update_id": update_id, "callback_query": {
            "id": draw(HOSTILE), "from": message["from"], "message": message,
            "chat_instance": draw(HOSTILE), "data": draw(DATA)}}
    if shape == 4:
        update = {"update_id": update_id, "my_chat_member": {
            "chat": message["chat"], "from": message["from"], "date": draw(BIG),
            "old_chat_member": {"status": "member", "user": message["from"]},
            "new_chat_member": {"status": draw(MEMBER), "user": message["from"]}}}
    return Case("telegram", False, update=update, signed=draw(ONE_IN[30]) > 0,
                content_type=draw(TG_CONTENT))


def _raw_update(draw: Any) -> Case:
    """Bodies no JSON encoder writes: duplicate keys, deep nesting, long numbers, bad bytes."""
    dup = "{" + ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in draw(RAW_KEYS)) + "}"
    depth = draw(DEPTH)
    raw = [dup.encode(), b"[" * depth + b"]" * depth,
           b'{"update_id": ' + b"[" * depth + b"]" * depth + b"}",
           b'{"update_id": 1' + b"0" * depth + b"}", b'{"update_id": 1e999}', b"\xff\xfe\x00",
           b"", b"null", b'"x\\u0000"', b'{"update_id": NaN}',
           b'{"update_id": 5, "update_id": 6, "message": {"message_id": 1, "date": 1, "chat": '
           b'{"id": 1, "type": "private"}, "text": "a\\u0000b"}, "message": 2}',
           b'{"update_id": 7, "message": {"chat": {"id": 1e400, "type": "private"}}}']
    return Case("telegram", False, raw=raw[draw(st.integers(0, len(raw) - 1))],
                content_type="application/json")


WEBHOOKS = st.sampled_from(["sms"] * 7 + ["whatsapp"] * 3 + ["status"] * 4 + ["telegram"] * 6)


def cases(cast: Cast) -> st.SearchStrategy[Case]:
    """Any case, spread over the webhooks: SMS most, then Telegram, status, WhatsApp."""
    who = Senders.of(cast)
    by_hook = {"sms": inbound_cases(who, whatsapp=False), "status": status_cases(),
               "whatsapp": inbound_cases(who, whatsapp=True), "telegram": telegram_cases(who)}
    return WEBHOOKS.flatmap(by_hook.__getitem__)


def draw_cases(cast: Cast, count: int, seed: int, sink: Callable[[Case], None]) -> None:
    """Hand `count` cases to `sink`, drawn by hypothesis (the same ones for the same seed)."""
    given_so_far = 0
    strategy = cases(cast)
    for rounds in range(20):  # hypothesis may stop early; the next seed carries on
        if given_so_far >= count:
            return

        def take(case: Case) -> None:
            nonlocal given_so_far
            if given_so_far < count:
                given_so_far += 1
                sink(case)

        # Generation only: nothing fails here, so there is nothing to shrink or replay.
        run = settings(max_examples=count - given_so_far, database=None, deadline=None,
                       phases=[Phase.generate], suppress_health_check=list(HealthCheck))(
            given(case=strategy)(take))
        hypothesis_seed(seed + rounds)(run)()
