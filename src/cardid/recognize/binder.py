"""Binder pages: the cards of a photo of a page named by pocket, in reading order.

A page holds ``rows × cols`` pockets (3×3 by default; 2×2 and 3×4 are common). The pitch between
pockets is a card's own size (median width and height of the cards found, plus the sleeve's
margin), so a page with empty pockets still places each card: its pocket is its centre's offset
from the top-left card, in pitches, counted from the page's first pocket that holds a card.
"""

from __future__ import annotations

import re

import numpy as np

from cardid.errors import CardIDError

LAYOUTS = ("2x2", "3x3", "3x4", "4x3")


def parse_layout(text: str) -> tuple[int, int]:
    """``"3x3"`` → (3, 3) rows × columns."""
    m = re.fullmatch(r"\s*(\d)\s*[x×]\s*(\d)\s*", text or "")
    if not m or not (1 <= int(m.group(1)) <= 6 and 1 <= int(m.group(2)) <= 6):
        raise CardIDError(f"a binder page is ROWSxCOLS (e.g. {', '.join(LAYOUTS)}), not {text!r}")
    return int(m.group(1)), int(m.group(2))


def pockets(corners: list, rows: int = 3, cols: int = 3, margin: float = 1.08) -> list[int | None]:
    """Each card's pocket (1 … rows·cols, reading order), or None for a card that does not fit the
    page (outside the grid, or a second card in a pocket: the later one)."""
    quads = [np.asarray(c, np.float64).reshape(4, 2) for c in corners if c is not None]
    if len(quads) != len(corners):
        raise CardIDError("every card needs its corners to be placed in a pocket")
    if not quads:
        return []
    centres = np.array([q.mean(0) for q in quads])
    widths = [np.linalg.norm(q[1] - q[0]) for q in quads]
    heights = [np.linalg.norm(q[3] - q[0]) for q in quads]
    pitch = np.array([np.median(widths), np.median(heights)]) * margin
    origin = centres.min(0)
    cells = np.rint((centres - origin) / pitch).astype(int)  # (col, row) from the first pocket used
    out: list[int | None] = []
    taken: set[int] = set()
    for col, row in cells:
        pocket = int(row) * cols + int(col) + 1
        if col >= cols or row >= rows or pocket in taken:
            out.append(None)
            continue
        taken.add(pocket)
        out.append(pocket)
    return out
