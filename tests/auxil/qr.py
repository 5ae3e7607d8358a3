"""Reading QR codes back as a phone would: from a card's SVG or PDF, decoded by zxing-cpp.

    link = decode(svg_modules(svg_bytes))
    link = decode(pdf_modules(pdf_bytes))
"""

from __future__ import annotations

import io
import re

import numpy as np
import pypdf
import zxingcpp
from pypdf.generic import ContentStream

QUIET = 4  # modules of white round the code, as a scanner needs
PIXELS = 8  # pixels a module


def svg_modules(svg: bytes) -> np.ndarray:
    """Return the dark modules of qrcode's SVG path image (one `M x,y H..V..H..z` each)."""
    cells = [(int(x), int(y)) for x, y in re.findall(rb"M(\d+),(\d+)H", svg)]
    assert cells, "no QR modules in the SVG"
    return _grid(cells)


def pdf_modules(pdf: bytes) -> np.ndarray:
    """Return the dark modules drawn as filled rectangles on a PDF's first page."""
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    content = ContentStream(page.get_contents(), page.pdf)
    rects = [[float(v) for v in operands] for operands, op in content.operations if op == b"re"]
    assert rects, "no rectangles on the page"
    size = rects[0][2]
    left, top = min(r[0] for r in rects), max(r[1] + r[3] for r in rects)
    return _grid([(round((x - left) / size), round((top - y - h) / size))
                  for x, y, _w, h in rects])


def _grid(cells: list[tuple[int, int]]) -> np.ndarray:
    xs, ys = [x for x, _ in cells], [y for _, y in cells]
    grid = np.zeros((max(ys) - min(ys) + 1, max(xs) - min(xs) + 1), dtype=bool)
    for x, y in cells:
        grid[y - min(ys), x - min(xs)] = True
    return grid


def decode(modules: np.ndarray) -> str:
    """Decode a QR code from its dark modules, as a scanner reads a printed one."""
    padded = np.pad(modules, QUIET)
    image = np.kron(np.where(padded, 0, 255).astype(np.uint8),
                    np.ones((PIXELS, PIXELS), dtype=np.uint8))
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1, f"expected one QR code, read {len(found)}"
    return str(found[0].text)
