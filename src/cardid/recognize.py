"""Recognise card crops: image files → decisions with names, sets and numbers (and pictures).

Full photos with several cards arrive with the detector; until then the inputs are card crops.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from cardid.catalog.records import Catalog
from cardid.db.decide import Candidate, Decision
from cardid.db.match import MatchConfig, Matcher
from cardid.db.store import CardDB
from cardid.embed import Embedder, load_embedder
from cardid.errors import CardIDError
from cardid.io import load_rgb, save_rgb


def _card(db: CardDB, c: Candidate) -> dict:
    r = db.records[c.card_id]
    d = {"card_id": c.card_id, "name": r.name, "set_id": r.set_id, "set_name": r.set_name, "number": r.number}
    d.update(similarity=round(c.cos, 4), score=round(c.score, 4))
    if c.inliers is not None:
        d["inliers"] = c.inliers
    if c.strip is not None:
        d["strip"] = round(c.strip, 4)
    return d


def decision_record(db: CardDB, d: Decision, top: int = 5, **extra) -> dict:
    """The JSON form of one decision: what `cardid recognize` prints per image."""
    return {
        **extra,
        "decision": d.kind,
        "card": _card(db, d.cards[0]) if d.kind == "match" else None,
        "ambiguous_between": [_card(db, c) for c in d.cards] if d.kind == "ambiguous" else [],
        "resolved_by": d.resolved_by,
        "score": round(d.score, 4),
        "top": [_card(db, c) for c in d.candidates[:top]],
    }


def recognize_files(
    images: Sequence[str | Path],
    model: str | Path | Embedder,
    db: str | Path | CardDB,
    config: MatchConfig = MatchConfig(),
    top: int = 5,
) -> tuple[CardDB, list[tuple[dict, Decision, np.ndarray]]]:
    """Recognise each image file; unreadable images are an error before any work is done."""
    if not images:
        raise CardIDError("no images given")
    embedder = load_embedder(model) if not isinstance(model, Embedder) else model
    db = db if isinstance(db, CardDB) else CardDB.load(db, embedder)
    matcher = Matcher(db, embedder, config)
    loaded = [load_rgb(p) for p in images]  # raises ImageError naming the bad file
    out = []
    for path, im in zip(images, loaded, strict=True):
        t = time.perf_counter()
        d = matcher.decide(matcher.prepare([im])[0])
        ms = (time.perf_counter() - t) * 1e3
        out.append((decision_record(db, d, top, image=str(path), ms=round(ms, 1)), d, im))
    return db, out


def _thumb(img: np.ndarray, h: int) -> np.ndarray:
    w = max(1, round(img.shape[1] * h / img.shape[0]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def _label(img: np.ndarray, lines: Sequence[str], color=(0, 0, 0)) -> np.ndarray:
    pad = np.full((18 * len(lines) + 6, img.shape[1], 3), 255, np.uint8)
    for i, s in enumerate(lines):
        cv2.putText(pad, s[:40], (4, 16 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return np.vstack([img, pad])


COLORS = {"match": (0, 130, 0), "ambiguous": (200, 120, 0), "unknown": (200, 0, 0)}


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
