"""Spot messages about suicide, self-harm, overdose or immediate danger.

False alarms are cheap (a kind message with phone numbers); missed crises are not. So the
patterns lean wide, and only well-known everyday idioms ("I could kill for a coffee", "this
traffic is killing me", "dying to see my kids") are taken out before matching.
"""

from __future__ import annotations

import re

from handlers.crisis_cy import detect_welsh_crisis

# Text is normalised first: lower case, apostrophes dropped ("don't" -> "dont"), anything
# that is not a letter or digit becomes a space, and runs of 3+ letters shrink ("dieeee").
_SELF = r"(?:my ?se?l[fv]e?s?|myslef|mysef|mi ?self|me ?self|meself|my sel)"
_WANT = (
    r"(?:want(?:ed|s)? (?:to|too|2)|wanna|wana|wnt (?:to|2)|gonna|gunna|gona|going (?:to|2)|"
    r"goin (?:to|2)|ready to|about to|deserve to|should just|i should|hope i|would rather|"
    r"id rather|feel like|felt like|feels like|like to|just want to|wish i could|need to|"
    r"gotta|have to|try to|trying to|planning to|plan to)"
)
_DIE = (
    r"(?:die|be dead|disappear(?: for ?ever)?|not exist|stop existing|"
    r"not be here|not wake up|never wake up|sleep for ?ever|go to sleep for ?ever|be with"
    r" (?:my )?(?:nan|mum|dad|gran) in heaven)"
)
_PILLS = (
    r"(?:pills|tablets|paracetamol|meds|medication|painkillers|sleeping pills|methadone|"
    r"valium|diazepam|pregabalin|gabapentin|co ?codamol|tramadol|benzos|insulin|antidepressants)"
)
_HIGH_PLACE = (
    r"(?:bridge|building|roof|cliff|ledge|tower|block|multi ?stor[e]?y|car ?park|balcony|"
    r"flyover|motorway bridge|window)"
)
_VEHICLE = r"(?:train|bus|lorry|car|traffic|truck|van|tube)"
_ATTACKER = (
    r"(?:he|she|they|someone|somebody|hes|shes|theyre|people|my ex|him|them|man|guy|friend|"
    r"mate|partner|brother|sister|son|daughter|dad|mum|boyfriend|girlfriend|husband|wife)"
)

_PATTERNS: dict[str, list[str]] = {
    "overdose": [
        r"\b(?:over|ova|ovr) ?do[sz](?:e|ed|es|ing|in|d)?\b", r"\bod(?:ed|ing|s)?\b",
        r"\b(?:took|taken|take|taking|swallowed|swallow|necked|downed|had) too (?:many|much)"
        r"(?! (?:time|notice|on|care|sun|money|stuff on|work))\b",
        r"\btoo much (?:gear|smack|heroin|spice|fent\w*|ket|coke|crack|methadone|valium|"
        r"benzos|pills|tablets|h)\b",
        r"\b(?:took|taken|take|taking|swallowed|swallow|necked|downed|had) (?:all|a load|loads|"
        rf"a handful|handfuls|a bottle|the whole|a whole|a box|a packet|a strip|\d+) (?:of )?"
        rf"(?:my |the |his |her )?{_PILLS}\b",
        rf"\bwhole (?:bottle|box|packet|pack|strip|load) of {_PILLS}\b",
        r"\b(?:cant|cannot|can not|wont|will not|doesnt|isnt|not) (?:wake|waking|waken) "
        r"(?:him|her|them|my|up|\w+ up)\b",
        r"\b(?:not|stopped|isnt|barely|hardly|aint) breathing\b",
        r"\b(?:turning|turned|gone|going|went|lips|face) (?:are |have |has |is )?blue\b",
        r"\bblue lips\b", r"\bunconscious\b", r"\bunresponsive\b",
        r"\b(?:naloxone|narcan|nyxoid|prenoxad)\b", r"\b(?:seizure|seizing)\b",
        rf"\b{_ATTACKER} (?:has |is |s |just )?collapsed\b", r"\bfoaming at the mouth\b",
        r"\b(?:drank|drink|drinking|drunk|swallow|swallowed|swallowing) (?:some |the |a )?"
        r"(?:bleach|antifreeze|poison|weed ?killer|rat poison)\b",
        r"\band (?:wont|will not|isnt|not|cant) (?:respond|responding|wake|waking)\b",
        rf"\b{_ATTACKER} (?:is |s )?(?:not|isnt|wont|will not) (?:responding|respond)\b",
        r"\bhaving a (?:fit|seizure)\b", r"\b(?:is|s|started|keeps) fitting\b",
    ],
    "suicide": [
        r"\bsu[ei]?[cs]{1,2}[iy]+d\w*", r"\bsuic?d(?:e|al)\b", r"\bsewer ?slide\b",
        r"\bun ?aliv\w*", r"\bkms\b", r"\bk m s\b",
        rf"\bk[i1]l+(?:ing|in|s|ed|d)? {_SELF}\b",
        rf"\b(?:hang|hanging|hung|neck|necking|top|topping|off|offing|end|ending|drown|"
        rf"drowning|poison|poisoning|gas|gassing|shoot|shooting|finish|finishing|smother) "
        rf"{_SELF}\b",
        rf"\b(?:do|doing|did) {_SELF} in\b",
        r"\b(?:end|ending|take|taking|took|finish|finishing) (?:my|me) (?:own )?life\b",
        r"\b(?:end|ending) (?:it all|everything|things|it tonight|it today|it now)\b",
        r"\b(?:want to|wanna|wana|going to|gonna|gona|ready to|about to|just|might|could|"
        r"should|will|ll|to|gotta|have to|need to) end it\b(?! with)",
        rf"\b{_WANT} {_DIE}\b",
        r"\bwish (?:i|id) (?:was|were|had|could|would) (?:dead|died|just die|be dead|"
        r"disappear|not wake up|never wake up)\b",
        r"\bwish (?:i|id) (?:wasnt|werent|was not|were not) (?:here|alive|born|around)\b",
        r"\bwish (?:id|i had|i) never (?:been born|woken up|wake up|woke up)\b",
        r"\b(?:dont|do not|dnt|didnt|really dont) (?:want|wanna|wana|wish) (?:to )?(?:live|be "
        r"alive|be here|exist|wake up|go on|carry on|be around)\b",
        r"\b(?:cant|can not|cannot) (?:go on|carry on|keep going)\b(?! (?:the|a|an|holiday|"
        r"trip|my|at|to|that|this|tuesday|monday|wednesday|thursday|friday|saturday|sunday|"
        r"today|tomorrow|it|there|about|with the|course))",
        r"\b(?:cant|can not|cannot) (?:do this|take this|take it)(?: any ?more| no ?more)\b",
        r"\b(?:cant|can not|cannot) cope\b",
        r"\b(?:no|nothing|not any|aint no|isnt any|whats the) (?:point|reason|purpose) "
        r"(?:in |to |of )?(?:living|life|go on|going on|carry on|carrying on|being alive|"
        r"being here|live|me being here)\b",
        r"\bnothing (?:left )?to live for\b", r"\bno reason to (?:live|stay)\b",
        r"\blife (?:isnt|is not|aint|s not|not) worth\b", r"\bnot worth living\b",
        r"\bbetter off (?:dead|without me|gone|if i (?:was|were)(?:nt| not)? (?:here|around|"
        r"dead|gone))\b",
        r"\bbe better (?:off )?without me\b",
        r"\b(?:this is|saying|final|my last) goodbye\b", r"\bgoodbye (?:forever|cruel world)\b",
        r"\bmy last (?:message|text)\b", r"\bnoose\b",
        r"\b(?:got|have|bought|found|tied|with|getting) (?:a |the |some )?rope\b",
        r"\bcant live (?:like this|with myself|any ?more|with (?:it|this))\b",
        r"\bwant(?:s)? (?:it all|everything|this|it|all this) to (?:stop|end)\b",
        r"\b(?:no one|nobody|noone|no body) (?:would|will|d|is going to|gonna) (?:miss|care|"
        r"notice)\b",
        r"\b(?:im|i am|i feel like) (?:a|just a|such a) burden\b",
        r"\bgive up on (?:life|living)\b", r"\b(?:done|finished) with (?:life|living)\b",
        r"\bhate (?:my|me) life\b",
        r"\b(?:going to|gonna|about to|want to|wanna) jump\b(?! (?:on|in the|the queue|"
        r"at|for|up|over|ship|in a|into (?:bed|the shower)))",
        r"\b(?:sleep|go to sleep) and (?:never|not) wake up\b",
        rf"\b(?:jump|jumping|jumped|throw {_SELF}|step|stepping) (?:off|from) (?:a |the |"
        rf"that |this |of )?(?:top of (?:a |the )?)?{_HIGH_PLACE}\b",
        rf"\b(?:jump|jumping|throw {_SELF}|step|stepping|walk|walking|lie|lay) (?:in front of|"
        rf"under|into) (?:a |the )?{_VEHICLE}\b",
        r"\b(?:jump|jumping|walk|walking|throw myself) (?:in|into) (?:the |a )?(?:river|sea|"
        r"canal|lake|reservoir)\b",
        r"\bwant(?:s)? (?:to|2) be dead\b",
        r"\b(?:feel|felt|feeling) like (?:dying|ending it|giving up on life)\b",
    ],
    "self_harm": [
        r"\bself ?harm\w*", r"\bshing\b",
        rf"\b(?:hurt|hurting|harm|harming|cut|cutting|burn|burning|punish|punishing|injure|"
        rf"injuring|starve|starving|scratch|scratching|bash|bashing) {_SELF}\b",
        r"\b(?:slit|slash|cut|cutting|slitting|slashing) (?:my|me) (?:wrists?|throat|arms?|"
        r"legs?|skin)\b",
        r"\b(?:started|start|been|back to|keep|want to|wanna|urge to) cutting\b",
        r"\bcutting again\b",
    ],
    "danger": [
        r"\b(?:going to|gonna|gunna|goin to|trying to|try to|tried to|threatening to|"
        r"threatened to|threatens to|will|ll|hell|shell|theyll|hed|shed|theyd|wants to|"
        r"want to|wanna|about to|coming to) "
        r"(?:kill|stab|hurt|shoot|batter|beat|strangle|rape|murder) (?:me|us|my (?:kids|"
        r"children|son|daughter|baby))\b",
        r"\b(?:going to|gonna|about to) (?:kill|stab|hurt|shoot) (?:someone|somebody)\b",
        r"\b(?:got|has|with|pulled|holding|had|waving) a (?:knife|blade|gun|machete|weapon)\b",
        rf"\b{_ATTACKER} (?:is |are |s |re |keeps )?(?:hitting|beating|strangling|choking|"
        rf"attacking|stabbing|following|hurting|kicking|punching) (?:me|us)\b",
        r"\b(?:bleeding (?:a lot|badly|loads|everywhere)|wont stop bleeding|losing (?:a lot of )?"
        r"blood)\b",
        r"\b(?:need|get|call|send) (?:an |a )?ambulance\b",
        r"\b(?:being|getting|been|got|was) (?:attacked|beaten|battered|stabbed|strangled|raped|"
        r"jumped|spiked|threatened|followed)\b",
        r"\b(?:trying to|tryna|try to) (?:break|get|kick the door) in\b",
        r"\b(?:attacked|stabbed|raped|spiked|strangled) me\b", r"\bbeat me up\b",
        r"\bin danger\b", r"\b(?:not|dont feel|dont feel|never|im not|am not) safe\b",
        r"\bunsafe\b", rf"\b{_ATTACKER} (?:is |s )?(?:broke|breaking|broken|trying to get) in",
        r"\bhelp me (?:please )?(?:hes|shes|theyre|they are|he is|she is)\b",
        r"\bcall (?:the )?999\b", r"\bdomestic (?:violence|abuse)\b",
    ],
}

# Everyday idioms removed before matching: they use crisis words but mean nothing of the kind.
_BENIGN = [
    r"\b(?:could|would|d) (?:kill|murder) for\b", r"\bkill(?:ing)? for (?:a|an|some) \w+",
    r"\bmurder an? \w+",
    r"\bdying (?:for|to (?:see|meet|get|go|try|know|hear|tell|start|have|watch|find|be))\b",
    r"\bto die for\b", r"\bdie (?:of|from|with) (?:laughing|laughter|boredom|embarrassment|"
    r"shame|cold|heat|hunger|curiosity|envy)\b", r"\b(?:bored|scared|sick|worried) to death\b",
    r"\b(?:nearly|almost) died (?:laughing|of)\b", r"\b(?:killed|killing|kill) it\b",
    r"\bkill(?:ing|ed)? (?:some )?time\b", rf"\bkill(?:ing|ed|s)? {_SELF} (?:laughing|with "
    r"laughter)\b", r"\bkilled me\b",
    r"\bdead (?:tired|good|easy|keen|funny|nice|chuffed|lucky|proud|on time|right|busy|"
    r"serious|quiet|on)\b",
    r"\b(?:phone|battery|car|laptop|charger|signal) (?:is |s |was |has )?(?:dead|dying|died)\b",
    r"\bin danger of\b", r"\bend it with\b", r"\bdie (?:my|your|her|his) hair\b",
    r"\bshoot(?:ing)? " + _SELF + r" in the foot\b",
    r"\b(?:mum|mam|mom|ma|nan|gran|nana|missus|boss|dad|wife|girlfriend|misses|sister|"
    r"brother|probation(?: officer)?|worker|teacher|landlord|partner)(?: \w+)? (?:will|ll|"
    r"would|d|is gonna|is going to|s gonna|s going to|gonna|going to) kill me (?:if|when|for)\b",
    r"\bsafe (?:to|for|place|house|and well)\b", r"\bnot safe to (?:drink|eat|park|use)\b",
]
_COMPILED = {cat: [re.compile(p) for p in pats] for cat, pats in _PATTERNS.items()}
_BENIGN_RE = [re.compile(p) for p in _BENIGN]
_OD_FORMS = [
    (re.compile(r"\bo\.?d\.?'(?:d|ed|ing|in)\b"), " overdosed "),
    (re.compile(r"\bo\.?d\.?(?:ed|ing)\b"), " overdosed "),
    (re.compile(r"\bo\.d\.?(?=\s|$|[,!?])"), " overdose "),
]
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")


def normalise(text: str) -> str:
    """Return the text as the patterns read it."""
    low = text.lower()
    for ch in "\u2019\u2018\u02bc`\u00b4":
        low = low.replace(ch, "'")
    for pattern, replacement in _OD_FORMS:
        low = pattern.sub(replacement, low)
    low = low.replace("'", "")
    low = _NOT_WORD.sub(" ", low)
    low = _REPEATS.sub(r"\1", low)
    return " ".join(low.split())


def detect_crisis(text: str) -> str | None:
    """Return the crisis category a message suggests, or None."""
    low = normalise(text or "")
    if not low:
        return detect_welsh_crisis(text or "")
    for pattern in _BENIGN_RE:
        low = pattern.sub(" | ", low)
    for category, patterns in _COMPILED.items():
        if any(p.search(low) for p in patterns):
            return category
    return detect_welsh_crisis(text)  # read for everyone: people switch languages
