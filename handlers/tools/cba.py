"""CBA: a cost-benefit analysis in four boxes, one question at a time; MYCBA shows it again.

Each answer is saved as it comes, so leaving half-way (MENU, STOP, a dead battery) keeps
what was written. A second CBA starts from the last one: SKIP keeps an old answer.
"""

from __future__ import annotations

from handlers.channels import traits
from handlers.conversation import Conversation
from handlers.registry import flow, keyword
from handlers.texts import t
from handlers.tools.common import (
    BACK_WORDS,
    NOTE_MAX,
    SKIP_WORDS,
    is_back,
    is_skip,
    short,
    telegram_only,
)
from handlers.types import Choice, Reply
from storage.models import ToolKind
from storage.tools_q import latest_entry, save_entry

BOXES = ("use_good", "use_bad", "stop_good", "stop_bad")
# Characters of one SMS for all four answers together: 3 GSM-7 segments hold 459, less a
# few for characters that count twice ([, ], ~ ...). Telegram shows the answers whole.
SMS_ROOM = 450


@keyword("CBA")
async def start_cba(conv: Conversation, args: str) -> list[Reply]:
    """Start (or redo) the four boxes."""
    last = await latest_entry(conv.session, conv.participant.id or 0, ToolKind.CBA)
    answers = {box: (last.data or {}).get(box) for box in BOXES} if last else {}
    conv.goto("cba", BOXES[0], {"answers": answers, "entry": None})
    return [Reply(t("cba.intro")), _ask(conv, 0)]


@flow("cba", free_text=True, words=SKIP_WORDS | BACK_WORDS)
async def cba_step(conv: Conversation, text: str) -> list[Reply]:
    """Take one answer, SKIP or BACK."""
    at = BOXES.index(conv.state.step) if conv.state.step in BOXES else 0
    if is_back(text):
        at = max(at - 1, 0)
        conv.goto("cba", BOXES[at])
        return [_ask(conv, at)]
    if not is_skip(text):
        answers = {**conv.data.get("answers", {}), BOXES[at]: short(text, NOTE_MAX)}
        conv.update(answers=answers)
        entry = await save_entry(conv.session, participant_id=conv.participant.id or 0,
                                 kind=ToolKind.CBA, data=answers, now=conv.now,
                                 entry_id=conv.data.get("entry"))
        conv.update(entry=entry.id)
    if at + 1 < len(BOXES):
        conv.goto("cba", BOXES[at + 1])
        return [_ask(conv, at + 1)]
    answers = conv.data.get("answers", {})
    conv.reset()
    if not any(answers.values()):
        return [Reply(t("cba.nothing_saved"))]
    return [Reply(t("cba.saved")), Reply(show_text(conv, answers))]


def _ask(conv: Conversation, at: int) -> Reply:
    box = BOXES[at]
    text = t(f"cba.ask_{box}", n=at + 1)
    old = conv.data.get("answers", {}).get(box)
    text += "\n" + (t("cba.before", old=short(conv.echo(old), 60)) if old else t("cba.how"))
    return Reply(text, choices=telegram_only(conv, Choice(t("tools.skip_label"), "SKIP"),
                                             Choice(t("tools.back_label"), "BACK")))


def show_text(conv: Conversation, answers: dict[str, str | None]) -> str:
    """Return the four boxes as one message (on SMS, fitted into three segments)."""
    shown = {box: " ".join(conv.echo(answers.get(box) or "").split()) for box in BOXES}
    empty = t("cba.empty")
    frame = [t("cba.show_title"), *(t(f"cba.show_{box}", answer="") for box in BOXES),
             t("cba.show_footer")]
    room = SMS_ROOM - len("\n".join(frame)) - len(empty) * sum(not v for v in shown.values())
    limits = _shares([len(v) for v in shown.values()], room if not traits(conv.channel).rich_text
                     else NOTE_MAX * len(BOXES))
    lines = [frame[0]]
    for (box, answer), limit in zip(shown.items(), limits, strict=True):
        lines.append(t(f"cba.show_{box}", answer=short(answer, limit) if answer else empty))
    lines.append(frame[-1])
    return "\n".join(lines)


def _shares(lengths: list[int], room: int) -> list[int]:
    """Split `room` between answers: short ones whole, the long ones an equal share."""
    limits = [0] * len(lengths)
    left = room
    for k, i in enumerate(sorted(range(len(lengths)), key=lambda i: lengths[i])):
        limits[i] = min(lengths[i], left // (len(lengths) - k))
        left -= limits[i]
    return limits


@keyword("MYCBA", "MYREASONS")
async def show_cba(conv: Conversation, args: str) -> list[Reply]:
    """Show the person's latest CBA."""
    last = await latest_entry(conv.session, conv.participant.id or 0, ToolKind.CBA)
    if last is None or not any((last.data or {}).values()):
        return [Reply(t("cba.none"))]
    return [Reply(show_text(conv, last.data or {}))]
