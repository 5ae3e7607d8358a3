"""MYDATA shows what is stored; DELETE erases it after a YES."""

from __future__ import annotations

import logging

from handlers.conversation import Conversation
from handlers.meeting_text import short_date
from handlers.registry import flow, keyword
from handlers.texts import t
from handlers.tools.common import bare, telegram_only
from handlers.types import Choice, Reply
from storage.erasure import erase_participant
from storage.tools_q import data_counts

logger = logging.getLogger(__name__)

CONFIRM_WORDS = frozenset({"YES", "YESDELETE", "DELETE_YES"})


@keyword("MYDATA", "DATA")
async def show_data(conv: Conversation, args: str) -> list[Reply]:
    """List what is kept about the person, in plain words."""
    p = conv.participant
    counts = await data_counts(conv.session, p.id or 0)
    body = t("mydata.summary", name=conv.echo(p.display_name),
             release=short_date(p.release_date),
             area=conv.echo(p.release_postcode or t("mydata.no_area")),
             messages=_count("messages", counts["messages_in"] + counts["messages_out"]),
             urges=_count("urges", counts["urges"]),
             checkins=_count("checkins", counts["checkins"]),
             cba=t("mydata.yes") if counts["cbas"] else t("mydata.no"),
             meetings=_count("meetings", counts["meetings"]),
             appointments=_count("appointments", counts["appointments"]),
             contacts=_count("contacts", counts["contacts"]),
             links=_count("links", counts["identities"]))
    return [Reply(body), Reply(t("mydata.how_to_delete"))]


def _count(what: str, n: int) -> str:
    """Return "1 urge log" or "3 urge logs": the one and other forms are both texts."""
    return t(f"mydata.{what}_one" if n == 1 else f"mydata.{what}_other", n=n)


@keyword("DELETE", "ERASE", "FORGETME")
async def ask_delete(conv: Conversation, args: str) -> list[Reply]:
    """Ask the person to confirm before anything is erased."""
    conv.goto("delete", "confirm", {})
    return [Reply(t("delete.confirm"),
                  choices=telegram_only(conv, Choice(t("delete.yes_label"), "DELETE_YES"),
                                        Choice(t("delete.no_label"), "MENU")))]


@flow("delete")
async def confirm_delete(conv: Conversation, text: str) -> list[Reply]:
    """Erase on YES; anything else keeps everything."""
    conv.reset()
    if bare(text) not in CONFIRM_WORDS:
        return [Reply(t("delete.kept"))]
    pid = conv.participant.id or 0
    report = await erase_participant(conv.session, participant_id=pid, now=conv.now)
    logger.info("participant %s erased their data (%s queued cancelled)", pid,
                report.cancelled)
    # The engine writes this reply to the outbox after the erasure: it is the one row that
    # keeps the address, until the dispatcher has sent it and calls scrub_sent_rows.
    return [Reply(t("delete.done"))]
