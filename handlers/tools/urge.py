"""URGE: a short walk through DEADS, one step per message, with an urge-surfing check-back.

Delay, Escape, Avoid/Accept, Distract, Substitute. The urge is rated 0-10 before and after,
the person's own CBA answers are offered if they have one, and an urge log entry is saved.
"Ride it out" queues a real follow-up in the outbox 15 minutes later; its answer comes back
into this flow.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.conversation import Conversation
from handlers.readers import writing_to
from handlers.registry import flow, keyword, menu_item
from handlers.texts import t
from handlers.tools.common import ask_rating, bare, is_skip, parse_rating, rating_choices, short
from handlers.types import Choice, Reply
from storage.models import MessageKind, Priority, ToolKind
from storage.outbox import enqueue
from storage.tools_q import cancel_queued_key, latest_entry, save_entry

STEPS = ("delay", "escape", "accept", "distract", "substitute")
FOLLOW_UP = timedelta(minutes=15)
FOLLOW_UP_GRACE = timedelta(hours=1)  # a check-back later than this would only confuse
HELPED = {f"H_{s.upper()}": s for s in (*STEPS, "surf")}
_NEXT = frozenset({"U_NEXT", "NEXT", "N", "OK", "GO", "NEXTSTEP", "CONTINUE"})
_SURF = frozenset({"U_SURF", "SURF", "WAIT", "RIDE", "RIDEITOUT"})
_DONE = frozenset({"U_DONE", "DONE", "EASED", "PASSED", "BETTER", "ITHASEASED"})
_REASONS = frozenset({"U_REASONS", "REASONS", "MYREASONS"})

menu_item(20, "menu.urge", "URGE")


@keyword("URGE", "URGES", "SOS")
async def start_urge(conv: Conversation, args: str) -> list[Reply]:
    """Start the urge walk; `URGE 8` gives the rating at once."""
    cba = await latest_entry(conv.session, conv.participant.id or 0, ToolKind.CBA)
    has_cba = cba is not None and any((cba.data or {}).values())
    conv.goto("urge", "before", {"run": f"{int(conv.now.timestamp())}", "cba": has_cba,
                                 "walked": []})
    rating = parse_rating(args) if args else None
    if rating is not None:
        return _took_before(conv, rating)
    return [ask_rating(conv, "urge.start")]


@flow("urge", free_text=frozenset({"helped"}), words=_NEXT | _SURF | _DONE | _REASONS)
async def urge_step(conv: Conversation, text: str) -> list[Reply]:
    """Take the answer to whichever urge step the person is on."""
    step = conv.state.step
    if step in STEPS:
        return await _walk(conv, text)
    if step == "helped":
        return await _took_helped(conv, text)
    rating = parse_rating(text)
    if rating is None:
        key = "urge.surf_hint" if step == "surf" else "tools.rating_hint"
        return [ask_rating(conv, key)]
    if step == "before":
        return _took_before(conv, rating)
    return await _took_after(conv, rating)


def _took_before(conv: Conversation, rating: int) -> list[Reply]:
    conv.goto("urge", STEPS[0])
    conv.update(before=rating, walked=[STEPS[0]])
    return [_step_reply(conv, STEPS[0])]


def _step_reply(conv: Conversation, step: str) -> Reply:
    choices = [Choice(t("urge.next_label"), "U_NEXT"), Choice(t("urge.surf_label"), "U_SURF"),
               Choice(t("urge.eased_label"), "U_DONE")]
    if step == STEPS[0] and conv.data.get("cba"):
        choices.append(Choice(t("urge.reasons_label"), "U_REASONS"))
    return Reply(t(f"urge.step_{step}"), choices=tuple(choices))


async def _walk(conv: Conversation, text: str) -> list[Reply]:
    step = conv.state.step
    word = bare(text)
    if word in _NEXT:
        at = STEPS.index(step) + 1
        if at >= len(STEPS):
            conv.goto("urge", "after")
            return [ask_rating(conv, "urge.ask_after")]
        conv.goto("urge", STEPS[at])
        conv.update(walked=[*conv.data.get("walked", []), STEPS[at]])
        return [_step_reply(conv, STEPS[at])]
    if word in _SURF:
        return await _start_surfing(conv)
    if word in _DONE:
        conv.update(helped=step)
        conv.goto("urge", "after")
        return [ask_rating(conv, "urge.ask_after")]
    if word in _REASONS:
        return [await _reasons(conv), _step_reply(conv, step)]
    return [Reply(t("urge.pick")), _step_reply(conv, step)]


async def _reasons(conv: Conversation) -> Reply:
    cba = await latest_entry(conv.session, conv.participant.id or 0, ToolKind.CBA)
    data = (cba.data if cba else None) or {}
    lines = [t(f"cba.show_{box}", answer=short(conv.echo(data[box]), 120))
             for box in ("stop_good", "use_bad") if data.get(box)]
    if not lines:
        return Reply(t("urge.no_reasons"))
    return Reply("\n".join([t("urge.reasons"), *lines]))


async def _start_surfing(conv: Conversation) -> list[Reply]:
    pid = conv.participant.id or 0
    key = f"urge-followup:{pid}:{conv.data.get('run')}"
    due = conv.now + FOLLOW_UP
    with writing_to(conv.participant, conv.channel):  # it lands unasked: discreet if chosen
        body = t("urge.followup")
    await enqueue(
        conv.session, channel=conv.channel, address=conv.inbound.address,
        body=body, dedupe_key=key, now=conv.now, participant_id=pid,
        kind=MessageKind.FOLLOWUP, priority=Priority.REPLY, due_at=due,
        not_after=due + FOLLOW_UP_GRACE,
        choices=[[c.label, c.payload] for c in rating_choices(conv)] or None,
        # The person asked for this check-back, so it may go out in quiet hours.
        meta={"always": True, "flow": "urge", "step": "surf"},
    )
    conv.update(followup=key, surfed=True)
    conv.goto("urge", "surf")
    return [Reply(t("urge.surf"))]


async def _took_after(conv: Conversation, rating: int) -> list[Reply]:
    if conv.data.get("followup"):
        await cancel_queued_key(conv.session, dedupe_key=conv.data["followup"],
                                reason="answered before the check-back", now=conv.now)
    conv.update(after=rating)
    await _save(conv)
    if conv.data.get("helped"):
        return _finish(conv)
    conv.goto("urge", "helped")
    options = [Choice(t(f"urge.helped_{s}"), code) for code, s in HELPED.items()]
    options.append(Choice(t("tools.skip_label"), "SKIP"))
    return [Reply(t("urge.ask_helped"), choices=tuple(options))]


async def _took_helped(conv: Conversation, text: str) -> list[Reply]:
    word = bare(text)
    if not is_skip(text):
        conv.update(helped=HELPED.get(word) or short(text, 100))
        await _save(conv)
    return _finish(conv)


async def _save(conv: Conversation) -> None:
    d = conv.data
    data = {"before": d.get("before"), "after": d.get("after"), "helped": d.get("helped"),
            "surfed": bool(d.get("surfed")), "steps": len(d.get("walked", []))}
    entry = await save_entry(conv.session, participant_id=conv.participant.id or 0,
                             kind=ToolKind.URGE, data=data, now=conv.now,
                             entry_id=d.get("entry"))
    conv.update(entry=entry.id)


def _finish(conv: Conversation) -> list[Reply]:
    before, after = conv.data.get("before"), conv.data.get("after")
    if before is None or after is None or after < before:
        done = t("urge.done_lower", before=before if before is not None else "?", after=after)
    else:
        done = t("urge.done_same", before=before, after=after)
    replies = [Reply(done)]
    if not conv.data.get("cba"):
        replies.append(Reply(t("urge.offer_cba")))
    replies.append(Reply(t("urge.end")))
    conv.reset()
    return replies
