"""Reading staff pages as a person would: fields by label, errors, links, the CSRF token."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx


@dataclass
class Page:
    """What a staff page shows: title, headings, labels, errors, links, buttons, inputs."""

    title: str = ""
    h1: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # label text -> the field's id
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> attributes
    field_errors: dict[str, str] = field(default_factory=dict)  # field id -> message
    summary: list[tuple[str, str]] = field(default_factory=list)  # (href, message)
    links: dict[str, str] = field(default_factory=dict)  # link text -> href
    buttons: list[str] = field(default_factory=list)
    notice: str = ""
    csrf: str = ""

    def value_of(self, label: str) -> str:
        """Return the value shown in the field with this label."""
        return self.inputs[self.labels[label]].get("value", "")

    def error_for(self, label: str) -> str:
        """Return the error message beside the field with this label ("" if none)."""
        return self.field_errors.get(self.labels[label], "")


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self._text: list[str] | None = None
        self._open: tuple[str, dict[str, str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input":
            if a.get("name") == "csrf_token":
                self.page.csrf = a.get("value", "")
            elif "id" in a:
                self.page.inputs[a["id"]] = a
            return
        if tag in ("title", "h1", "label", "a", "button", "p", "div") and self._open is None:
            if tag in ("p", "div") and not (a.get("class", "").startswith("error-message")
                                            or a.get("class") == "notice"):
                return
            self._open, self._text = (tag, a), []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open is None or self._open[0] != tag or self._text is None:
            return
        (name, a), text = self._open, " ".join("".join(self._text).split())
        self._open = self._text = None
        page = self.page
        if name == "title":
            page.title = text
        elif name == "h1":
            page.h1 = text
        elif name == "label":
            page.labels[text] = a.get("for", "")
        elif name == "a" and a.get("href", "").startswith("#") and a["href"] != "#main-content":
            page.summary.append((a["href"], text))
            page.links[text] = a["href"]
        elif name == "a":
            page.links[text] = a.get("href", "")
        elif name == "button":
            page.buttons.append(text)
        elif name == "p":
            page.field_errors[a.get("id", "").removesuffix("-error")] = text.removeprefix(
                "Error: ")
        elif name == "div":
            page.notice = text


def read_page(html: str) -> Page:
    """Read a staff page's visible structure."""
    parser = _PageParser()
    parser.feed(html)
    return parser.page


async def submit(client: httpx.AsyncClient, path: str, data: dict[str, str],
                 *, form_page: str | None = None) -> httpx.Response:
    """Fill in and send a form as a browser does: open its page, then post with its token."""
    shown = await client.get(form_page or path)
    assert shown.status_code == 200, (shown.status_code, shown.headers.get("location"))
    token = read_page(shown.text).csrf
    assert token, f"no csrf_token field on {form_page or path}"
    return await client.post(path, data={"csrf_token": token, **data})
