"""Two harder query sets built from the real data, seeded and reproducible.

The 16 real dev crops no longer separate methods (a 16×22 grey thumbnail already names 15 of them),
so two harder sets are made from them with a fixed seed:

- ``crops``: every real crop × ``per_crop`` perturbations of a sloppy finder and a worse camera —
  corner jitter, a small rotation, a loose or tight crop (background showing, or the border cut),
  a colour cast, blur, 110–260 px wide, JPEG;
- ``scans``: ``scans`` gallery scans through the heavy camera simulation with glare always on,
  then the same sloppy-finder perturbation.

Both are written as image folders with a ``queries.csv`` (``file, card_id, source``), readable by
``cardid eval retrieval --queries`` and :func:`cardid.eval.queries.load_queries`.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from cardid.catalog.records import Catalog
from cardid.images import load_rgb, save_rgb
from cardid.preprocess import CARD_ASPECT
from cardid.synth.photo import prepare_scan, render_crop
from cardid.synth.settings import photo_preset


def sloppy_crop(card: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A card crop as a sloppy finder and a worse camera would hand it over (RGB uint8 in and out)."""
    h, w = card.shape[:2]
    out_w = int(rng.integers(110, 261))
    out_h = round(out_w / CARD_ASPECT)
    scale = rng.uniform(0.9, 1.12)  # < 1: tight (border cut), > 1: loose (background showing)
    angle = np.radians(rng.uniform(-6, 6))
    c = np.array([w / 2, h / 2])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) - c
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = corners @ rot.T * scale + c + rng.normal(0, 0.03 * w, (4, 2))
    dst = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], np.float32)
    m = cv2.getPerspectiveTransform(src.astype(np.float32), dst)
    table = tuple(int(v) for v in rng.integers(20, 235, 3))
    img = cv2.warpPerspective(
        card, m, (out_w, out_h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT, borderValue=table
    )
    gains = rng.uniform(0.85, 1.15, 3) * rng.uniform(0.8, 1.15)  # colour cast and exposure
    img = np.clip(img.astype(np.float32) * gains, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.6))
    q = int(rng.integers(30, 81))
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def glare_view(scan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A gallery scan photographed badly: heavy camera simulation, glare always on, then sloppy."""
    cfg = photo_preset("heavy").model_copy(update={"p_glare": 1.0, "crop_width": 260})
    return sloppy_crop(render_crop(prepare_scan(scan, cfg), rng, cfg), rng)


def _write(out: Path, items: Sequence[tuple[str, str, np.ndarray]]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "queries.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "card_id", "source"])
        for name, cid, img in items:
            save_rgb(out / name, img)
            w.writerow([name, cid, ""])
    return out / "queries.csv"


def build_hard_sets(
    crops: Sequence[tuple[str | Path, str]],
    gallery: Catalog,
    out: str | Path,
    per_crop: int = 8,
    scans: int = 200,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``out/crops/`` and ``out/scans/`` (images + ``queries.csv``); returns the two CSVs.
    Everything is a function of ``seed``: the same inputs give the same sets, byte for byte."""
    out = Path(out)
    items = []
    for i, (path, cid) in enumerate(crops):
        img = load_rgb(path)
        for v in range(per_crop):
            rng = np.random.default_rng([seed, i, v, 0x5C0])
            items.append((f"crop{i:03d}_{v}.png", cid, sloppy_crop(img, rng)))
    result = {"crops": _write(out / "crops", items)}
    ids = sorted(random.Random(seed).sample(gallery.ids, min(scans, len(gallery))))
    items = []
    for i, cid in enumerate(ids):
        rng = np.random.default_rng([seed, i, 0x6A1])
        items.append((f"scan{i:03d}.png", cid, glare_view(gallery.load_image(cid), rng)))
    result["scans"] = _write(out / "scans", items)
    return result
