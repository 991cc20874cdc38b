"""Card-detection data: simulated multi-card photos written in the ultralytics OBB layout.

``images/{train,val,test}/*.jpg`` and ``labels/{train,val,test}/*.txt`` with one line per card,
``0 x1 y1 x2 y2 x3 y3 x4 y4`` (corners normalised to [0, 1]), plus ``pokemon_cards.yaml``. Scenes
hold 1–18 cards: loose on a table (overlapping, leaving the frame, turned any way) or in binder
pages, and some photos hold no card at all (negatives). A card cut by the frame is labelled with
the minimum-area rectangle of its visible part; a card hidden below ``min_visible`` is left out.
Hard negatives lie under the cards (card backs, phones, paper, books: never labelled) and some
loose cards sit in graded slabs (the label is the card, not the slab).

With ``real`` (a folder of real photos with YOLO txt labels, e.g. ../shared/realdata/detection/…)
the real photos are added by photo: ``real_test_fraction`` of them to ``images/real_test`` (never
trained on: where precision and recall are reported), a share of the rest to ``val`` and the others
to ``train``; their axis-aligned boxes become four-corner labels.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from cardid.catalog.records import Catalog
from cardid.detect.geometry import order_corners
from cardid.errors import CardIDError
from cardid.images import load_rgb, save_rgb
from cardid.io import atomic_dir, write_bytes_atomic, write_json_atomic
from cardid.synth.objects import DISTRACTORS, distractor
from cardid.synth.photo import prepare_scan, render_scene
from cardid.synth.settings import photo_preset

SPLITS = ("train", "val", "test")
YAML_NAME = "pokemon_cards.yaml"


@dataclass(frozen=True)
class DetectionDataConfig:
    scenes: int = 200
    size: int = 640
    val_fraction: float = 0.15
    test_fraction: float = 0.05
    negative_fraction: float = 0.08  # photos without any card
    binder_fraction: float = 0.3  # binder pages (9–18 cards in pockets)
    table_fraction: float = 0.25  # of the others: laid out apart on a table (else loose, overlapping)
    max_cards: int = 18
    min_visible: float = 0.3  # fraction of a card's area; less is not labelled
    preset: str = "default"
    seed: int = 0
    # hard negatives real photos have: card backs, phones, paper, books under the cards
    p_distractors: float = 0.5
    max_distractors: int = 3
    p_slab: float = 0.15  # a loose card (scenes of ≤ 3) in a graded slab: the box is the card
    # real labelled photos (YOLO txt, axis-aligned boxes) mixed in, split by photo
    real: str | None = None
    real_test_fraction: float = 0.2  # → images/real_test, never trained on
    real_val_fraction: float = 0.1  # of the rest → val (model selection); the others → train
    real_max_side: int = 1280


def obb_label(corners: np.ndarray, width: int, height: int, min_area: float = 16.0) -> np.ndarray | None:
    """The label polygon of one card (4×2, normalised) or None when nothing of it is in frame.

    Inside the frame the card's own corners are kept (in card order, so the label says which
    way the card faces); a card cut by the frame gets the minimum-area rectangle of its visible
    part, ordered TL TR BR BL."""
    quad = np.asarray(corners, np.float32).reshape(4, 2)
    inside = (quad[:, 0] >= 0) & (quad[:, 0] <= width) & (quad[:, 1] >= 0) & (quad[:, 1] <= height)
    if inside.all():
        pts = quad
    else:
        frame = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
        hull = cv2.convexHull(quad)
        area, poly = cv2.intersectConvexConvex(hull, frame)
        if poly is None or area < min_area:
            return None
        pts = order_corners(cv2.boxPoints(cv2.minAreaRect(poly.reshape(-1, 2))))
    norm = pts / np.array([width, height], np.float32)
    return np.clip(norm, 0.0, 1.0)


def real_split(stem: str, cfg: DetectionDataConfig) -> str:
    """Which split a real photo goes to: a stable function of its file name (by photo, seeded)."""
    u = zlib.crc32(f"{cfg.seed}:{stem}".encode()) / 2**32
    if u < cfg.real_test_fraction:
        return "real_test"
    return (
        "val"
        if u < cfg.real_test_fraction + cfg.real_val_fraction * (1 - cfg.real_test_fraction)
        else "train"
    )


def _write_real(tmp: Path, cfg: DetectionDataConfig, counts: dict) -> None:
    from cardid.detect.evaluate import labelled_images, yolo_boxes

    root = Path(cfg.real)
    subs = [root / s for s in ("train", "valid", "val", "test") if (root / s).is_dir()]
    for img_path, label in labelled_images(subs or [root]):
        img = load_rgb(img_path)
        h, w = img.shape[:2]
        boxes = yolo_boxes(label, w, h)
        scale = min(1.0, cfg.real_max_side / max(h, w))
        if scale < 1.0:
            img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        split = real_split(img_path.stem, cfg)
        lines = [
            "0 "
            + " ".join(f"{v:.6f}" for v in (x1 / w, y1 / h, x2 / w, y1 / h, x2 / w, y2 / h, x1 / w, y2 / h))
            for x1, y1, x2, y2 in boxes
        ]
        stem = f"real_{img_path.stem[:60]}"
        save_rgb(tmp / "images" / split / f"{stem}.jpg", img, quality=92)
        write_bytes_atomic(
            tmp / "labels" / split / f"{stem}.txt", ("\n".join(lines) + "\n" if lines else "").encode()
        )
        c = counts.setdefault(split, {"images": 0, "cards": 0, "negatives": 0})
        c["images"] += 1
        c["cards"] += len(lines)
        c["negatives"] += not lines
        c["real"] = c.get("real", 0) + 1


def _split(i: int, n: int, cfg: DetectionDataConfig) -> str:
    n_test = round(n * cfg.test_fraction)
    n_val = round(n * cfg.val_fraction)
    return "test" if i < n_test else "val" if i < n_test + n_val else "train"


def write_detection_dataset(
    catalog: Catalog,
    out: str | Path,
    cfg: DetectionDataConfig = DetectionDataConfig(),
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Render ``cfg.scenes`` photos of ``catalog`` cards and write the OBB dataset at ``out``."""
    if len(catalog) == 0:
        raise CardIDError("the catalog is empty")
    if cfg.scenes < 3:
        raise CardIDError("need at least 3 scenes (train, val and test)")
    catalog.require_images()
    photo = photo_preset(cfg.preset)
    rng = np.random.default_rng(cfg.seed)
    scans: dict[str, np.ndarray] = {}
    out = Path(out)
    counts = {s: {"images": 0, "cards": 0, "negatives": 0} for s in SPLITS}
    protect = [*catalog.image_dirs(), *([cfg.real] if cfg.real else [])]
    with atomic_dir(out, overwrite=overwrite, kind="detection-dataset", protect=protect) as tmp:
        for s in (*SPLITS, "real_test") if cfg.real else SPLITS:
            (tmp / "images" / s).mkdir(parents=True)
            (tmp / "labels" / s).mkdir(parents=True)
        for i in range(cfg.scenes):
            split = _split(i, cfg.scenes, cfg)
            if rng.random() < cfg.negative_fraction:
                n, layout = 0, "scatter"
            elif rng.random() < cfg.binder_fraction:
                n, layout = int(rng.integers(9, cfg.max_cards + 1)), "binder"
            else:
                n = int(rng.integers(1, min(6, cfg.max_cards) + 1))
                layout = "table" if rng.random() < cfg.table_fraction else "scatter"
            ids = [str(c) for c in rng.choice(catalog.ids, n)] if n else []
            for c in ids:
                if c not in scans:
                    scans[c] = prepare_scan(catalog.load_image(c), photo)
            distractors = []
            if rng.random() < cfg.p_distractors:
                for _ in range(int(rng.integers(1, cfg.max_distractors + 1))):
                    kind = DISTRACTORS[int(rng.integers(0, len(DISTRACTORS)))]
                    distractors.append(distractor(rng, kind, cfg.size * rng.uniform(0.2, 0.5)))
            holders = [
                "slab" if (layout == "scatter" and n <= 3 and rng.random() < cfg.p_slab) else None
                for _ in ids
            ]
            scene = render_scene(
                [scans[c] for c in ids], rng, (cfg.size, cfg.size), layout, photo, distractors, holders
            )
            lines = []
            for card in scene.cards:
                if card.visible < cfg.min_visible:
                    continue
                lab = obb_label(card.corners, cfg.size, cfg.size)
                if lab is not None:
                    lines.append("0 " + " ".join(f"{v:.6f}" for v in lab.reshape(-1)))
            stem = f"scene_{i:05d}"
            save_rgb(tmp / "images" / split / f"{stem}.jpg", scene.image, quality=90)
            write_bytes_atomic(
                tmp / "labels" / split / f"{stem}.txt", ("\n".join(lines) + "\n" if lines else "").encode()
            )
            counts[split]["images"] += 1
            counts[split]["cards"] += len(lines)
            counts[split]["negatives"] += not lines
            if progress:
                progress(1)
        if cfg.real:
            _write_real(tmp, cfg, counts)
        spec = {  # no "path": ultralytics then resolves the splits from this file's folder (portable)
            "train": "images/train",
            "val": "images/val",
            "test": "images/test",
            "names": {0: "card"},
        }
        if cfg.real:
            spec["real_test"] = "images/real_test"  # held-out real photos: report P/R here
        write_bytes_atomic(tmp / YAML_NAME, yaml.safe_dump(spec, sort_keys=False).encode())
        write_json_atomic(tmp / "detection.json", {"config": asdict(cfg), "counts": counts})
    return out
