"""Spot Welsh messages about suicide, self-harm, overdose or immediate danger.

Read for everyone, whatever their language: people switch between Welsh and English. As in
`handlers.crisis`, the patterns lean wide and only everyday idioms are taken out first.
Welsh mutates the start of a word after some words ("lladd" is "ladd" after "i", "torri"
is "dorri" or "thorri"), so each verb is listed in its mutated forms. Text is read without
accents or apostrophes ("dw i'n" is "dw in"), lower case, letters and digits only.
"""

from __future__ import annotations

import re
import unicodedata

_SELF = r"(?:fy|fi|fin|fi fy) ?hun(?:an)?"  # fy hun, fy hunan, fi'n hun
_WANT = r"(?:eisiau|eisiai|eisie|isio|isho|ishe|isie|eisio|moyn|moin|mofyn|angen|am)"
_PILLS = (r"(?:n?[dt]abledi|bils|pils|phils|f?feddyginiaeth|meddyginiaeth|methadone|"
          r"fethadone|paracetamol|barasetamol|gyffuriau|cyffuriau|nghyffuriau|meds)")
_KILL = r"(?:lladd|ladd|nghrogi|crogi|grogi|chrogi|boddi|foddi|gwenwyno|wenwyno|saethu|" \
        r"taflu|daflu|thaflu|gorffen|orffen)"
_HURT = r"(?:niweidio|hanafu|anafu|nafu|brifo|frifo|torri|dorri|thorri|llosgi|losgi|" \
        r"cosbi|gosbi|crafu|grafu|llwgu)"
_HIGH = r"(?:bont|pont|mhont|adeilad|clogwyn|to|twr|balconi|ffenest|ffenestr|maes parcio)"
_VEHICLE = r"(?:tren|dren|bws|lori|car|traffig|ceir)"
_ATTACKER = r"(?:e|o|fe|fo|hi|nhw|rhywun|mhartner|nghariad|ngwr|ngwraig|cyn)"

_PATTERNS: dict[str, list[str]] = {
    "overdose": [
        r"\bgor ?ddo[sz]\w*", r"\bod io\b",
        rf"\b(?:cymryd|cymerais|cymerodd|cymeres|llyncu|llyncais|llyncodd|wedi cymryd|wedi "
        rf"llyncu) (?:gormod|ormod|llwyth|y cyfan|yr holl|pecyn cyfan|potel gyfan|bocs cyfan|"
        rf"llond llaw|\d+) (?:o |or )?(?:fy |y |ei )?{_PILLS}\b",
        rf"\b(?:llyncu|llyncais|cymryd|cymerais)r? {_PILLS} (?:i )?gyd\b",
        r"\b(?:ddim|dim|wedi stopio|prin) (?:yn )?anadlu\b",
        r"\bmethu (?:ei|eu) (?:ddeffro|deffro|dihuno|ddihuno)\b",
        r"\bmethu (?:deffro|dihuno) (?:fo|hi|nhw|e|ef|o)\b",
        r"\b(?:ddim|dim) yn (?:deffro|dihuno|ymateb)\b",
        r"\b(?:gwefusau|wefusau) ?(?:yn |n )?(?:las|glas)\b",
        r"\b(?:troi|droi) ?(?:in|n|yn) las\b", r"\banymwybodol\b", r"\bwedi llewygu\b",
        r"\bcael ffit\b", r"\b(?:naloxone|nalocson|nyxoid|prenoxad)\b",
    ],
    "suicide": [
        r"\bhunan ?ladd\w*", rf"\b{_KILL} {_SELF}\b", r"\bsuicid\w*",
        rf"\b{_WANT} (?:marw|farw)\b", r"\b(?:mynd|barod) i farw\b",
        r"\b(?:dim|ddim) (?:eisiau|isio|isho|ishe|isie|eisie|moyn|moin) (?:byw|fyw|bod yn fyw|"
        r"deffro|bodoli|parhau|bod ar y ddaear)\b",
        r"\b(?:dim|does dim) (?:pwynt|rheswm|diben) (?:mewn |i |o )?(?:byw|fyw|bod yn fyw|"
        r"cario mlaen|cario ymlaen|mynd ymlaen)\b",
        r"\bdim byd (?:ar ol )?i fyw (?:amdano|iddo)\b",
        r"\b(?:rhoi|roi) diwedd ar (?:y cyfan|fy mywyd|bopeth|pethau|hyn i gyd|y cwbl)\b",
        r"\b(?:gorffen|orffen|diweddu|cymryd|gymryd|dwyn|ddwyn) fy (?:mywyd|mywyd fy hun)\b",
        r"\bmethu (?:cario|mynd) (?:mlaen|ymlaen)\b(?! (?:gyda|efo|a|i|at|heddiw|yfory|yn))",
        r"\bmethu ymdopi\b", r"\bmethu (?:gwneud|cymryd) hyn (?:ddim )?(?:mwy|mwyach)\b",
        r"\b(?:well|gwell) (?:eu byd )?(?:hebddo i|hebdda i|heb fi|hebof fi|hebddof)\b",
        r"\b(?:well|gwell) (?:fy myd )?(?:yn farw|wedi marw)\b",
        r"\b(?:fydd|fyddai|fasai|fasa|byddai) neb yn (?:gweld fy (?:eisiau|isio|colli)|"
        r"colli fi|golli fi|malio|becso|sylwi)\b", r"\bneb yn malio amdana i\b",
        rf"\b(?:neidio|camu|gamu|taflu fy hun) (?:oddi ar|o ben) (?:y |yr )?{_HIGH}\b",
        rf"\b(?:neidio|camu|gamu|cerdded|gorwedd|taflu fy hun) (?:o flaen|dan|o dan) "
        rf"(?:y |yr )?{_VEHICLE}\b",
        r"\b(?:neidio|cerdded|taflu fy hun) (?:i|ir) (?:afon|mor|gamlas|llyn|r afon|r mor)\b",
        r"\bdyma ffarwel\b", r"\b(?:hwyl fawr|ffarwel) am byth\b", r"\bfy neges olaf\b",
        r"\bcwlwm crogi\b", r"\b(?:prynu|wedi cael|clymu|prynais) (?:y |rhyw )?(?:rhaff|raff)\b",
        r"\b(?:dwin|rwyn|dwi n|rydw in|yn) (?:faich|baich) (?:i|ar)\b",
        r"\bcasau (?:fy |y )?(?:mywyd|bywyd)\b", r"\bdiflannu am byth\b",
        r"\b(?:cysgu a )?(?:peidio (?:a )?deffro|byth (?:yn )?deffro|byth ddeffro)\b",
        r"\bwedi cael digon ar (?:fywyd|fyw|bywyd)\b",
        r"\beisiau i (?:hyn|y cyfan|popeth) (?:ddod i ben|stopio|orffen)\b",
    ],
    "self_harm": [
        r"\bhunan ?niw\w*", rf"\b{_HURT} {_SELF}\b",
        r"\b(?:torri|dorri|thorri|slasio|sleisio) fy (?:ngarddwrn|arddyrnau|ngwddf|mreichiau|"
        r"mraich|nghoesau|nghoes|nghroen)\b",
        r"\b(?:dechrau|dechre|wedi dechrau) (?:torri|dorri|thorri) eto\b",
    ],
    "danger": [
        r"\b(?:mynd|bygwth|trio|treio|eisiau|isio|am|dod) (?:i )?(?:fy|in|n) (?:lladd|ladd|"
        r"nhrywanu|mrifo|nghuro|nhagu)\b",
        r"\b(?:mynd|bygwth|trio|treio|eisiau|isio|am|dod) (?:i )?(?:lladd|ladd|trywanu|frifo|"
        r"guro) (?:fi|ni)\b",
        r"\b(?:gyda|efo|ganddo|ganddi|ganddyn|gydai) (?:gyllell|cyllell|gwn|arf|machete)\b",
        r"\b(?:angen|ffonio|ffoniwch|galw|galwch) (?:am )?(?:ambiwlans|ambulance)\b",
        r"\bymosod\w* (?:arna|arnaf|arnon)\w*", r"\bwedi (?:fy|cael fy) (?:nhrywanu|nghuro|"
        r"nhagu|nhreisio|ymosod)\b",
        rf"\b{_ATTACKER} (?:yn )?fy (?:nghuro|nhagu|nhrywanu|nilyn|mrifo|nghicio|nharo)\b",
        r"\b(?:yn )?fy (?:nghuro|nhagu|nhrywanu|mrifo|nghicio|nharo)\b",
        r"\btrais (?:yn y cartref|domestig)\b", r"\bcam ?drin domestig\b",
        r"\bffoni\w* (?:yr )?999\b", r"\bmewn perygl\b", r"\b(?:ddim|dim) yn (?:ddiogel|saff)\b",
        r"\b(?:gwaedu (?:yn ddrwg|lot|llawer|ym mhobman)|methu stopio gwaedu|colli (?:llawer|"
        r"lot) o waed)\b",
        r"\btrio torri (?:mewn|i mewn)\b",
    ],
}
# Everyday Welsh that uses crisis words for nothing of the kind.
_BENIGN = [
    r"\bl?ladd (?:amser|y amser)\b", r"\b(?:lladd|ladd)(?: i| fi)? os\b",
    r"\bmewn perygl o\b", r"\b(?:ddim|dim) yn (?:ddiogel|saff) i (?:yfed|bwyta|parcio|"
    r"ddefnyddio|nofio)\b", r"\bg?ch?yllell a fforc\b", r"\bmarw (?:isio|eisiau|o)\b",
]
_COMPILED = {cat: [re.compile(p) for p in pats] for cat, pats in _PATTERNS.items()}
_BENIGN_RE = [re.compile(p) for p in _BENIGN]
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")


def normalise(text: str) -> str:
    """Return the text as the Welsh patterns read it: "Dw i'n MARW" is "dw in marw"."""
    low = unicodedata.normalize("NFKD", text.lower())
    low = "".join(ch for ch in low if not unicodedata.combining(ch))
    for ch in "'\u2019\u2018\u02bc`\u00b4":
        low = low.replace(ch, "")
    low = _REPEATS.sub(r"\1", _NOT_WORD.sub(" ", low))
    return " ".join(low.split())


def detect_welsh_crisis(text: str) -> str | None:
    """Return the crisis category a Welsh message suggests, or None."""
    low = normalise(text or "")
    if not low:
        return None
    for pattern in _BENIGN_RE:
        low = pattern.sub(" | ", low)
    for category, patterns in _COMPILED.items():
        if any(p.search(low) for p in patterns):
            return category
    return None
