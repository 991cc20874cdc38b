"""Contact sheets: one row per card — scan | 8 camera crops | 2 scenes — to judge realism by eye."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cardid.catalog.records import Catalog
from cardid.errors import CatalogError
from cardid.images import IMAGE_EXTENSIONS, load_rgb, save_rgb
from cardid.synth.photo import render_scene
from cardid.synth.settings import PRESETS, PhotoSimConfig
from cardid.synth.views import ViewRenderer


def _fit(img: np.ndarray, h: int) -> np.ndarray:
    w = max(1, round(img.shape[1] * h / img.shape[0]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 16), (0, 0, 0), -1)
    cv2.putText(out, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _row(tiles: list[np.ndarray], h: int, gap: int = 4) -> np.ndarray:
    parts = []
    for t in tiles:
        parts += [_fit(t, h), np.full((h, gap, 3), 255, np.uint8)]
    return np.hstack(parts[:-1])


def contact_sheet(
    catalog: Catalog,
    cards: int = 4,
    seed: int = 0,
    cfg: PhotoSimConfig = PRESETS["default"],
    compare: str | Path | None = None,
    row_height: int = 200,
) -> np.ndarray:
    """Build the sheet as an RGB array. ``compare``: a folder of real photo crops shown as a last row."""
    catalog.require_images()
    rng = np.random.default_rng(seed)
    ids = [catalog.ids[i] for i in sorted(rng.choice(len(catalog), min(cards, len(catalog)), replace=False))]
    renderer = ViewRenderer(catalog, cfg, seed)
    rows = []
    for cid in ids:
        tiles = [_label(_fit(catalog.load_image(cid), row_height), f"scan {cid}")]
        tiles += [renderer.view(cid, "val", v) for v in range(8)]
        others = [renderer.scan(c) for c in rng.choice(catalog.ids, 8)]
        for layout, scans in (
            ("scatter", [renderer.scan(cid), *others[:2]]),
            ("binder", [renderer.scan(cid), *others]),
        ):
            scene = render_scene(scans, rng, (480, 480), layout, cfg)
            tiles.append(_label(_fit(scene.image, row_height), layout))
        rows.append(_row(tiles, row_height))
    if compare:
        real = sorted(p for p in Path(compare).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not real:
            raise CatalogError(f"no images to compare with in {compare}")
        rows.append(
            _row(
                [_label(_fit(load_rgb(real[0]), row_height), "real crops")]
                + [load_rgb(p) for p in real[1:11]],
                row_height,
            )
        )
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.vstack(rows)


def write_contact_sheet(catalog: Catalog, out: str | Path, **kwargs) -> Path:
    save_rgb(out, contact_sheet(catalog, **kwargs))
    return Path(out)
