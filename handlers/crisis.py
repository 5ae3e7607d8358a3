"""Spot messages about suicide, self-harm, overdose or immediate danger."""

from __future__ import annotations

import re

# Each category: phrases (regular expressions on lower-case text with spaces collapsed).
# False alarms are cheap; missed crises are not. Benign idioms are excluded below.
_PATTERNS: dict[str, list[str]] = {
    "suicide": [
        r"\bsuicid\w*", r"\bsuicd\w*", r"\bsucide\w*", r"\bkill(ing)? my ?sel(f|ve)\b",
        r"\bkms\b", r"\bend (it all|my life|things)\b", r"\btake my (own )?life\b",
        r"\b(want|wanna|going|gonna) to die\b", r"\bwanna die\b", r"\bwant to be dead\b",
        r"\bbetter off dead\b", r"\bno (point|reason) (in )?(living|going on|being alive)\b",
        r"\bdon'?t want to (live|be alive|be here)( any ?more)?\b",
        r"\bcan'?t go on\b", r"\bhang(ing)? my ?self\b", r"\bjump(ing)? off\b",
        r"\bnot be here tomorrow\b", r"\bgoodbye cruel\b",
    ],
    "self_harm": [
        r"\bself[ -]?harm\w*", r"\bcut(ting)? my ?(self|arms?|wrists?)\b",
        r"\bslit my\b", r"\bhurt(ing)? my ?self\b", r"\bharm(ing)? my ?self\b",
        r"\bburn(ing)? my ?self\b",
    ],
    "overdose": [
        r"\bover ?dos\w*", r"\bod'?(ed|ing|d)?\b", r"\btook too (many|much)\b",
        r"\btaken too (many|much)\b", r"\bcan'?t wake (him|her|them|my)\b",
        r"\bnot breathing\b", r"\bturning blue\b", r"\bblue lips\b", r"\bunconscious\b",
        r"\bnaloxone\b", r"\bnarcan\b", r"\bwhole (bottle|box|packet) of\b",
    ],
    "danger": [
        r"\b(he|she|they|someone)('?s| is| are)? (going to|gonna) (kill|hurt|stab) me\b",
        r"\bin danger\b", r"\bnot safe\b", r"\bbeing attacked\b", r"\bgot a knife\b",
        r"\bthreatening to kill\b",
    ],
}
_BENIGN = [
    r"\bkill(ing)? for an? \w+", r"\bdying (for|to (see|try|know|get|go))\b",
    r"\bto die for\b", r"\bkilling it\b", r"\bkilled it\b", r"\bkilling time\b",
    r"\bkill(ing|s)? me( ?off)? (with|laughing)\b", r"\bdead (tired|good|easy|on|funny)\b",
    r"\bmy phone('s| is)? (dead|dying)\b", r"\bbattery('s| is)? (dead|dying)\b",
]
_COMPILED = {cat: [re.compile(p) for p in pats] for cat, pats in _PATTERNS.items()}
_BENIGN_RE = [re.compile(p) for p in _BENIGN]


def detect_crisis(text: str) -> str | None:
    """Return the crisis category a message suggests, or None."""
    low = " ".join(text.lower().replace("\u2019", "'").split())
    if not low:
        return None
    for pattern in _BENIGN_RE:
        low = pattern.sub(" ", low)
    for category, patterns in _COMPILED.items():
        if any(p.search(low) for p in patterns):
            return category
    return None
