"""Draw a release card as a one-page A5 PDF (reportlab, pure Python).

The layout is fixed, top to bottom: name and code (the QR code to their right), where to
text it, the meetings, the crisis numbers. Long lines shrink or wrap and are cut to fit,
so the card is always exactly one page. Type is DejaVu Sans where the system has it (names
such as Łukasz or Ștefan print as written); otherwise Helvetica, with accents dropped.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from reportlab.lib.pagesizes import A5
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import registerFont, stringWidth
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas

from bot.card import ReleaseCard, qr_matrix

MARGIN = 12 * mm
QR_SIZE = 38 * mm
GAP = 4 * mm
PLACE_LINES = 2  # an address longer than this is cut with an ellipsis
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core
DEJAVU = {"CardSans": "DejaVuSans.ttf", "CardSans-Bold": "DejaVuSans-Bold.ttf",
          "CardMono-Bold": "DejaVuSansMono-Bold.ttf"}


@dataclass(frozen=True)
class Fonts:
    """The three faces a card uses, and whether they can print any letter."""

    body: str
    bold: str
    code: str
    unicode: bool


@cache
def fonts() -> Fonts:
    """Register DejaVu Sans if the system has it; else fall back to the PDF standard fonts."""
    try:
        for name, file in DEJAVU.items():
            registerFont(TTFont(name, str(FONT_DIR / file)))
    except (OSError, TTFError):
        return Fonts("Helvetica", "Helvetica-Bold", "Courier-Bold", unicode=False)
    return Fonts("CardSans", "CardSans-Bold", "CardMono-Bold", unicode=True)


def printable(text: str) -> str:
    """Return text the chosen fonts can draw (accents dropped for the standard fonts)."""
    if fonts().unicode:
        return text
    plain = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in plain if not unicodedata.combining(ch)).encode(
        "cp1252", "replace").decode("cp1252")


@dataclass
class Pen:
    """Writes lines down the page from the top margin."""

    canvas: Canvas
    y: float
    left: float = MARGIN
    width: float = A5[0] - 2 * MARGIN

    def line(self, text: str, *, bold: bool = False, size: float = 13, space: float = 1.3,
             font: str | None = None) -> None:
        """Write one line, shrinking the type if it would run past the right margin."""
        face = font or (fonts().bold if bold else fonts().body)
        text = printable(text)
        while size > 8 and stringWidth(text, face, size) > self.width:
            size -= 1
        self.y -= size * space
        self.canvas.setFont(face, size)
        self.canvas.drawString(self.left, self.y, text)

    def wrapped(self, text: str, *, size: float = 13, lines: int = PLACE_LINES) -> None:
        """Write text wrapped to the width, cut to `lines` lines."""
        split = simpleSplit(printable(text), fonts().body, size, self.width) or [""]
        if len(split) > lines:
            split = [*split[: lines - 1], split[lines - 1].rstrip(" ,") + "…"]
        for part in split:
            self.line(part, size=size, space=1.25)

    def gap(self, points: float = GAP) -> None:
        """Leave some space."""
        self.y -= points


def _draw_qr(canvas: Canvas, link: str, *, x: float, top: float) -> None:
    modules = qr_matrix(link)
    cell = QR_SIZE / len(modules)
    canvas.setFillGray(0)
    for row, cells in enumerate(modules):
        for col, dark in enumerate(cells):
            if dark:
                canvas.rect(x + col * cell, top - (row + 1) * cell, cell, cell, stroke=0, fill=1)
    canvas.setFont(fonts().body, 10)
    canvas.drawCentredString(x + QR_SIZE / 2, top - QR_SIZE - 10, "Or scan this for Telegram")


def _top(pen: Pen, card: ReleaseCard) -> None:
    """Write the name and code; the QR code, if any, stands to their right."""
    top = pen.y
    if card.telegram_link:
        _draw_qr(pen.canvas, card.telegram_link, x=A5[0] - MARGIN - QR_SIZE, top=top)
        pen.width -= QR_SIZE + GAP
    pen.line(card.first_name, bold=True, size=30)
    pen.gap()
    pen.line("Your code", size=14)
    if card.code:
        pen.line(card.code, font=fonts().code, size=26)
    else:
        pen.line("(printed with a new code)", size=13)
    if card.code_expires is not None:
        expires = card.code_expires
        pen.gap(GAP / 2)
        pen.line(f"Use it by {expires.day} {expires:%B %Y}", size=13)
    if card.phone_code:
        pen.line(f"To call instead, key: {card.phone_code}", size=12)
    if card.telegram_link:
        pen.y = min(pen.y, top - QR_SIZE - 14)  # below the QR code's caption
        pen.width += QR_SIZE + GAP


def draw_card(canvas: Canvas, card: ReleaseCard) -> None:
    """Draw the whole card on the canvas's one page."""
    pen = Pen(canvas, A5[1] - MARGIN)
    _top(pen, card)
    if card.sms_number:
        pen.gap()
        pen.line(f"Text it to {card.sms_number}", bold=True, size=18)
    if card.meetings:
        pen.gap(2 * GAP)
        pen.line("Meetings near you", bold=True, size=16)
        for meeting in card.meetings:
            pen.gap(GAP / 2)
            pen.line(meeting.when, bold=True, size=13)
            pen.wrapped(meeting.place)
    pen.gap(2 * GAP)
    pen.line("If you need help now", bold=True, size=16)
    for crisis in card.crisis:
        pen.line(f"{crisis.name} {crisis.number}: {crisis.note}", size=14)


def card_pdf(card: ReleaseCard) -> bytes:
    """Return the card as a one-page A5 PDF."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A5, pageCompression=1, invariant=True)
    canvas.setTitle("Card")
    draw_card(canvas, card)
    canvas.showPage()
    canvas.save()
    return out.getvalue()
