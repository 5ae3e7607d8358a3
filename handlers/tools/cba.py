"""CBA: a cost-benefit analysis in four boxes, one question at a time; MYCBA shows it again.

Each answer is saved as it comes, so leaving half-way (MENU, STOP, a dead battery) keeps
what was written. A second CBA starts from the last one: SKIP keeps an old answer.
"""

from __future__ import annotations

from handlers.conversation import Conversation
from handlers.registry import flow, keyword
from handlers.texts import t
from handlers.tools.common import NOTE_MAX, is_back, is_skip, short, telegram_only
from handlers.types import Choice, Reply
from storage.models import ToolKind
from storage.tools_q import latest_entry, save_entry

BOXES = ("use_good", "use_bad", "stop_good", "stop_bad")
SHOW_MAX = 110  # characters of each answer shown back in one SMS


@keyword("CBA")
async def start_cba(conv: Conversation, args: str) -> list[Reply]:
    """Start (or redo) the four boxes."""
    last = await latest_entry(conv.session, conv.participant.id or 0, ToolKind.CBA)
    answers = {box: (last.data or {}).get(box) for box in BOXES} if last else {}
    conv.goto("cba", BOXES[0], {"answers": answers, "entry": None})
    return [Reply(t("cba.intro")), _ask(conv, 0)]


@flow("cba", free_text=True)
async def cba_step(conv: Conversation, text: str) -> list[Reply]:
    """Take one answer, SKIP or BACK."""
    at = BOXES.index(conv.state.step) if conv.state.step in BOXES else 0
    if is_back(text):
        at = max(at - 1, 0)
        conv.goto("cba", BOXES[at])
        return [_ask(conv, at)]
    if not is_skip(text):
        answers = {**conv.data.get("answers", {}), BOXES[at]: text[:NOTE_MAX]}
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
    return [Reply(t("cba.saved")), Reply(show_text(answers))]


def _ask(conv: Conversation, at: int) -> Reply:
    box = BOXES[at]
    text = t(f"cba.ask_{box}", n=at + 1)
    old = conv.data.get("answers", {}).get(box)
    text += "\n" + (t("cba.before", old=short(old, 60)) if old else t("cba.how"))
    return Reply(text, choices=telegram_only(conv, Choice(t("tools.skip_label"), "SKIP"),
                                             Choice(t("tools.back_label"), "BACK")))


def show_text(answers: dict[str, str | None]) -> str:
    """Return the four boxes as one short message."""
    lines = [t("cba.show_title")]
    for box in BOXES:
        answer = answers.get(box)
        lines.append(t(f"cba.show_{box}", answer=short(answer, SHOW_MAX) if answer
                       else t("cba.empty")))
    lines.append(t("cba.show_footer"))
    return "\n".join(lines)


@keyword("MYCBA", "MYREASONS")
async def show_cba(conv: Conversation, args: str) -> list[Reply]:
    """Show the person's latest CBA."""
    last = await latest_entry(conv.session, conv.participant.id or 0, ToolKind.CBA)
    if last is None or not any((last.data or {}).values()):
        return [Reply(t("cba.none"))]
    return [Reply(show_text(last.data or {}))]
