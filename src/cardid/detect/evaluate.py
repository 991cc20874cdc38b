"""Detection metrics on photos with YOLO txt labels (``cls cx cy w h``, or OBB ``cls x1 y1 … y4``).

An oriented detection is scored by its enclosing axis-aligned box: precision and recall at the
detector's operating point and AP@0.5 (all-point interpolation) over its ranked detections.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from cardid.detect import Detection
from cardid.detect.geometry import box_iou
from cardid.errors import CardIDError
from cardid.images import IMAGE_EXTENSIONS, load_rgb


def yolo_boxes(label: Path, width: int, height: int) -> list[tuple[float, float, float, float]]:
    boxes = []
    if label.is_file():
        for line in label.read_text().split("\n"):
            v = line.split()
            if len(v) == 5:
                cx, cy, w, h = (float(x) for x in v[1:])
                boxes.append(
                    ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
                )
            elif len(v) == 9:  # OBB corners: their enclosing box
                xy = np.array(v[1:], float).reshape(4, 2) * [width, height]
                boxes.append((xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()))
    return boxes


def labelled_images(folders: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    pairs = []
    for folder in folders:
        folder = Path(folder)
        images = folder / "images" if (folder / "images").is_dir() else folder
        labels = folder / "labels" if (folder / "labels").is_dir() else folder
        if images.parent.name == "images":  # ultralytics layout: images/<split> ↔ labels/<split>
            labels = images.parent.parent / "labels" / images.name
        for p in sorted(images.iterdir()):
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                pairs.append((p, labels / f"{p.stem}.txt"))
    if not pairs:
        raise CardIDError(f"no labelled images in {', '.join(map(str, folders))}")
    return pairs


def average_precision(scores: list[float], hits: list[bool], n_gt: int) -> float:
    if n_gt == 0 or not scores:
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.cumsum(np.asarray(hits)[order])
    fp = np.cumsum(~np.asarray(hits)[order])
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, 1)
    mrec = np.concatenate([[0], recall, [1]])
    mpre = np.concatenate([[1], precision, [0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]).sum())


def operating_point(scores: list[float], hits: list[bool], n_gt: int, recall: float = 0.95) -> dict:
    """The best precision among score thresholds that keep recall ≥ ``recall`` (and that threshold);
    precision 0 when no threshold reaches it."""
    if not scores or n_gt == 0:
        return {"recall_goal": recall, "precision": 0.0, "recall": 0.0, "score_threshold": None}
    order = np.argsort(-np.asarray(scores), kind="stable")
    s = np.asarray(scores)[order]
    tp = np.cumsum(np.asarray(hits)[order])
    prec = tp / np.arange(1, len(s) + 1)
    rec = tp / n_gt
    ok = np.flatnonzero(rec >= recall)
    if not len(ok):
        return {"recall_goal": recall, "precision": 0.0, "recall": float(rec[-1]), "score_threshold": None}
    best = ok[np.argmax(prec[ok])]
    return {
        "recall_goal": recall,
        "precision": float(prec[best]),
        "recall": float(rec[best]),
        "score_threshold": float(s[best]),
    }


def evaluate_detector(
    detect: Callable[[np.ndarray], list[Detection]],
    pairs: list[tuple[Path, Path]],
    iou: float = 0.5,
    progress: Callable[[int], None] | None = None,
) -> dict:
    scores, hits, n_gt, n_tp, n_pred, times = [], [], 0, 0, 0, []
    for img_path, label in pairs:
        img = load_rgb(img_path)
        h, w = img.shape[:2]
        gt = yolo_boxes(label, w, h)
        t = time.perf_counter()
        dets = sorted(detect(img), key=lambda d: -d.score)
        times.append(time.perf_counter() - t)
        used = set()
        for d in dets:
            box = d.box()
            best, j = 0.0, -1
            for k, g in enumerate(gt):
                if k not in used and (o := box_iou(box, g)) > best:
                    best, j = o, k
            hit = best >= iou
            if hit:
                used.add(j)
            scores.append(d.score)
            hits.append(hit)
        n_gt += len(gt)
        n_tp += len(used)
        n_pred += len(dets)
        if progress:
            progress(1)
    return {
        "images": len(pairs),
        "cards": n_gt,
        "detections": n_pred,
        "precision": n_tp / n_pred if n_pred else 0.0,
        "recall": n_tp / n_gt if n_gt else 0.0,
        "ap50": average_precision(scores, hits, n_gt),
        "at_recall_0.95": operating_point(scores, hits, n_gt, 0.95),
        "ms_per_image": float(np.mean(times) * 1e3) if times else None,
    }
