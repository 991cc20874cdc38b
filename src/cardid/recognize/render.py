"""Pictures of results: a card crop beside its top-5 gallery scans, a photo with every card outlined.

Drawn from the JSON records (:meth:`cardid.recognize.results.PhotoResult.to_json`): the same form
`recognize --show` draws during a run and `eval photos` draws afterwards from its report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from cardid.catalog.records import Catalog
from cardid.decision.decide import AMBIGUOUS
from cardid.images import save_rgb


def _thumb(img: np.ndarray, h: int) -> np.ndarray:
    w = max(1, round(img.shape[1] * h / img.shape[0]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def _label(img: np.ndarray, lines: Sequence[str], color=(0, 0, 0)) -> np.ndarray:
    pad = np.full((18 * len(lines) + 6, img.shape[1], 3), 255, np.uint8)
    for i, s in enumerate(lines):
        cv2.putText(pad, s[:40], (4, 16 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return np.vstack([img, pad])


COLORS = {"match": (0, 130, 0), "ambiguous": (200, 120, 0), "unknown": (200, 0, 0), "back": (40, 90, 200)}


def render_decision(
    query: np.ndarray,
    record: dict,
    catalog: Catalog | None,
    truth: str | None = None,
    height: int = 280,
) -> np.ndarray:
    """The query beside its top-5 gallery scans, each labelled; the chosen card framed in the
    decision's colour (green match, orange ambiguous), the true card (if known) underlined blue."""
    chosen = {c["card_id"] for c in ([record["card"]] if record["card"] else record["ambiguous_between"])}
    head = record["decision"] + (f" ({record['resolved_by']})" if record.get("resolved_by") else "")
    if record.get("probability") is not None:
        head += f" p {record['probability']:.2f}"
    tiles = [_label(_thumb(query, height), ["query", head], COLORS[record["decision"]])]
    for c in record["top"]:
        if catalog is not None and c["card_id"] in catalog:
            scan = _thumb(catalog.load_image(c["card_id"]), height)
        else:
            scan = np.full((height, round(height * 0.716), 3), 220, np.uint8)
        if c["card_id"] in chosen:
            cv2.rectangle(scan, (0, 0), (scan.shape[1] - 1, scan.shape[0] - 1), COLORS[record["decision"]], 6)
        if truth is not None and c["card_id"] == truth:
            cv2.line(scan, (0, scan.shape[0] - 4), (scan.shape[1], scan.shape[0] - 4), (0, 60, 220), 8)
        ev = f"cos {c['similarity']:.2f}" + (f" inl {c['inliers']}" if "inliers" in c else "")
        tiles.append(_label(scan, [c["card_id"], c["name"][:18], ev]))
    h = max(t.shape[0] for t in tiles)
    tiles = [np.vstack([t, np.full((h - t.shape[0], t.shape[1], 3), 255, np.uint8)]) for t in tiles]
    gap = np.full((h, 6, 3), 255, np.uint8)
    row = [tiles[0], np.full((h, 14, 3), 255, np.uint8)]
    for t in tiles[1:]:
        row += [t, gap]
    return np.hstack(row)


def save_decision_png(path: str | Path, *args, **kwargs) -> None:
    save_rgb(path, render_decision(*args, **kwargs))


def annotate(image: np.ndarray, result: dict) -> np.ndarray:
    """The photo with each card outlined in its decision's colour and labelled."""
    out = image.copy()
    scale = max(1.0, max(image.shape[:2]) / 900)
    for c in result["cards"]:
        if "corners" not in c:
            continue
        pts = np.array(c["corners"], np.int32)
        color = COLORS[c["decision"]]
        cv2.polylines(out, [pts], True, color, max(2, round(3 * scale)), cv2.LINE_AA)
        card = c["card"] or (c["ambiguous_between"] or [None])[0]
        label = f"{card['name']} {card['number']} {card['similarity']:.2f}" if card else c["decision"]
        if c["decision"] == AMBIGUOUS:
            label = "? " + label
        x, y = int(pts[:, 0].min()), max(int(pts[:, 1].min()) - 6, 14)
        fs = 0.5 * scale
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        cv2.rectangle(out, (x, y - th - 4), (x + tw + 4, y + 2), (255, 255, 255), -1)
        cv2.putText(
            out, label, (x + 2, y), cv2.FONT_HERSHEY_SIMPLEX, fs, color, max(1, round(scale)), cv2.LINE_AA
        )
    if result["no_card"]:
        cv2.putText(
            out, "no card", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0 * scale, (200, 0, 0), 2, cv2.LINE_AA
        )
    return out
