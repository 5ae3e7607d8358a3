"""DISCREET ON / OFF: whether texts we start say what they are about, and what they may not say.

A discreet text (a reminder, a sequence step, a change notice) names a day, a time and a
town, never recovery, drugs, prison or SMART: a lock-screen preview shows its first line to
anyone near the phone. Replies to what the person sent are never discreet: they asked.
"""

from __future__ import annotations

import re

from handlers.conversation import Conversation
from handlers.readers import is_discreet
from handlers.registry import keyword
from handlers.texts import t
from handlers.types import Reply

# Words (and the starts of words, so "smartrecovery.org" and "released" count) a discreet
# text must not show. A town, venue, link or contact that holds one is left out.
TELLING = re.compile(
    r"recover|smart|drug|alcohol|drink|prison|\bhmp\b|jail|probation|releas|addict|\burge"
    r"|craving|relapse|crisis|rehab|sober|offender|parole|narcotic|methadone|detox",
    re.IGNORECASE)
ON_WORDS = frozenset({"ON", "YES", "YMLAEN", "IE"})  # Welsh: ymlaen (on), ie (yes)
OFF_WORDS = frozenset({"OFF", "NO", "IFFWRDD", "DIFFODD", "NA"})  # i ffwrdd, diffodd (off)


def telling(text: str) -> bool:
    """Say whether a text names something a discreet text must not (recovery, prison...)."""
    return bool(TELLING.search(text))


@keyword("DISCREET", "CYNNIL")  # cynnil: Welsh for discreet
async def choose_discreet(conv: Conversation, args: str) -> list[Reply]:
    """Show or change whether texts we start are worded discreetly."""
    p = conv.participant
    word = re.sub(r"[^A-Z]", "", args.upper())
    if not word:
        on = is_discreet(p, conv.channel)
        key = "status_on" if on else "status_off"
        return [Reply(t(f"discreet_texts.{key}"))]
    if word not in ON_WORDS | OFF_WORDS:
        return [Reply(t("discreet_texts.bad"))]
    p.discreet = word in ON_WORDS
    p.updated_at = conv.now
    conv.session.add(p)
    return [Reply(t("discreet_texts.on" if p.discreet else "discreet_texts.off"))]
