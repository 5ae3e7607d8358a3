"""Reading what a page shows as text: its tables cell by cell, or one region's words.

    tables = read_tables(html)            # caption -> rows of cell texts (header row first)
    words = text_of(html, "release-card")  # the visible text inside class="release-card"
"""

from __future__ import annotations

from html.parser import HTMLParser

BREAKS = {"br", "div", "p", "li"}  # a new line inside a cell reads as a space
VOID = {"br", "img", "input", "meta", "link", "hr", "col", "source", "wbr"}


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._rows: list[list[str]] | None = None
        self._caption: list[str] | None = None
        self._cell: list[str] | None = None
        self._name = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._rows, self._name = [], f"table {len(self.tables) + 1}"
        elif tag == "caption":
            self._caption = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []
        elif tag in BREAKS and self._cell is not None:
            self._cell.append(" ")

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._caption):
            if sink is not None:
                sink.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._caption is not None:
            self._name = " ".join("".join(self._caption).split())
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None and self._rows:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._rows is not None:
            self.tables[self._name] = self._rows
            self._rows = None


def read_tables(html: str) -> dict[str, list[list[str]]]:
    """Return each table's rows of cell texts, keyed by its caption (or `table N`)."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables


class _Region(HTMLParser):
    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class = css_class
        self.depth = 0
        self.words: list[str] = []
        self.images: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        inside = self.depth > 0
        if not inside and self.css_class in a.get("class", "").split():
            inside = True
        if inside and tag == "img":
            self.images.append(a)
        if inside and tag not in VOID:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.words.append(data)


def text_of(html: str, css_class: str) -> str:
    """Return the visible text inside the first element with this class, spaces collapsed."""
    parser = _Region(css_class)
    parser.feed(html)
    return " ".join(" ".join(parser.words).split())


def images_in(html: str, css_class: str) -> list[dict[str, str]]:
    """Return the attributes of each <img> inside elements with this class."""
    parser = _Region(css_class)
    parser.feed(html)
    return parser.images
