"""The YOLO11n-OBB card finder's ONNX export, run with onnxruntime alone (no torch, no ultralytics).

What ultralytics' predictor does for an ONNX OBB model, step by step, in NumPy: letterbox to the
model's square size (aspect kept, centred, grey 114 padding), RGB in 0–1; one forward pass; keep
rows whose best class score clears ``conf``; Fast-NMS on the probabilistic IoU of the rotated
boxes (a box goes when any better-scored box overlaps it more than ``iou``); at most ``max_det``;
boxes back to photo pixels; corners from (cx, cy, w, h, angle). `tests/detect` checks it against
ultralytics on the same ONNX file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np

from cardid.detect import Detection
from cardid.errors import CardIDError

PAD_VALUE = 114
MAX_NMS = 30000  # boxes entering NMS at most (ultralytics' cap)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float, int, int]:
    """``image`` (H×W×3) resized into ``size``×``size`` keeping its aspect, centred on grey padding:
    (the padded image, x gain, y gain, left pad, top pad)."""
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    out = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return out, new_w / w, new_h / h, left, top


def _covariance(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each rotated box (cx, cy, w, h, angle) as a Gaussian's covariance [[a, c], [c, b]]."""
    a, bb, t = b[:, 2] ** 2 / 12, b[:, 3] ** 2 / 12, b[:, 4]
    cos, sin = np.cos(t), np.sin(t)
    return a * cos**2 + bb * sin**2, a * sin**2 + bb * cos**2, (a - bb) * cos * sin


def probiou(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Probabilistic IoU (1 − Hellinger distance of the boxes' Gaussians) of every pair, (N, M)."""
    x1, y1 = b1[:, 0:1], b1[:, 1:2]
    x2, y2 = b2[None, :, 0], b2[None, :, 1]
    a1, bb1, c1 = (v[:, None] for v in _covariance(b1))
    a2, bb2, c2 = (v[None] for v in _covariance(b2))
    den = (a1 + a2) * (bb1 + bb2) - (c1 + c2) ** 2 + eps
    t1 = ((a1 + a2) * (y1 - y2) ** 2 + (bb1 + bb2) * (x1 - x2) ** 2) / den * 0.25
    t2 = ((c1 + c2) * (x2 - x1) * (y1 - y2)) / den * 0.5
    det = np.clip(a1 * bb1 - c1**2, 0, None) * np.clip(a2 * bb2 - c2**2, 0, None)
    t3 = np.log(((a1 + a2) * (bb1 + bb2) - (c1 + c2) ** 2) / (4 * np.sqrt(det) + eps) + eps) * 0.5
    bd = np.clip(t1 + t2 + t3, eps, 100.0)
    return 1 - np.sqrt(1.0 - np.exp(-bd) + eps)


def fast_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept, best first: a box is dropped when any better-scored box overlaps it more than
    ``iou`` (dropped boxes suppress too: Fast-NMS, as ultralytics runs for rotated boxes)."""
    order = np.argsort(-scores, kind="stable")
    ious = np.triu(probiou(boxes[order], boxes[order]), k=1)
    return order[(ious > iou).sum(0) <= 0]


def corners(b: np.ndarray) -> np.ndarray:
    """(N, 5) rotated boxes → (N, 4, 2) corners."""
    ctr, w, h, t = b[:, None, :2], b[:, 2:3], b[:, 3:4], b[:, 4:5]
    cos, sin = np.cos(t), np.sin(t)
    v1 = np.concatenate([w / 2 * cos, w / 2 * sin], -1)[:, None]
    v2 = np.concatenate([-h / 2 * sin, h / 2 * cos], -1)[:, None]
    return np.concatenate([ctr + v1 + v2, ctr + v1 - v2, ctr - v1 - v2, ctr - v1 + v2], 1)


class OnnxObbDetector:
    """``cardid train detector``'s ``best.onnx`` as a card finder, on onnxruntime only."""

    def __init__(self, path: str | Path, conf: float = 0.25, iou: float = 0.7, max_det: int = 300):
        from cardid.onnxrt import open_session

        path = Path(path)
        if not path.is_file():
            raise CardIDError(f"detector weights not found: {path}")
        self.session = open_session(path, what="ONNX detector")
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("task", "obb") != "obb":
            raise CardIDError(f"{path} is a YOLO {meta.get('task')} model, not an oriented-box (obb) one")
        inp = self.session.get_inputs()[0]
        size = inp.shape[-1]
        if not isinstance(size, int):
            size = int(ast.literal_eval(meta.get("imgsz", "[640, 640]"))[-1])
        self.input, self.size = inp.name, size
        self.names = ast.literal_eval(meta["names"]) if "names" in meta else {0: "card"}
        self.conf, self.iou, self.max_det = conf, iou, max_det

    def detect(self, image: np.ndarray) -> list[Detection]:
        """RGB uint8 → detections, in photo pixels."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise CardIDError(f"expected an RGB uint8 image, got shape {image.shape} dtype {image.dtype}")
        boxed, gx, gy, left, top = letterbox(image, self.size)
        x = np.ascontiguousarray(boxed.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        pred = self.session.run(None, {self.input: x})[0][0].T  # (anchors, 4 + classes + angle)
        nc = len(self.names)
        cls = pred[:, 4 : 4 + nc]
        score = cls.max(1)
        keep = score > self.conf
        pred, score, label = pred[keep], score[keep], cls[keep].argmax(1)
        if not len(pred):
            return []
        if len(pred) > MAX_NMS:
            top_k = np.argsort(-score, kind="stable")[:MAX_NMS]
            pred, score, label = pred[top_k], score[top_k], label[top_k]
        boxes = np.concatenate([pred[:, :4], pred[:, -1:]], 1).astype(np.float64)
        shifted = boxes.copy()
        shifted[:, :2] += label[:, None] * 7680.0  # classes never suppress each other
        i = fast_nms(shifted, score, self.iou)[: self.max_det]
        b, s = boxes[i], score[i]
        b[:, 0] = (b[:, 0] - left) / gx
        b[:, 1] = (b[:, 1] - top) / gy
        b[:, 2] /= gx
        b[:, 3] /= gy
        return [Detection(c.astype(np.float32), float(v)) for c, v in zip(corners(b), s, strict=True)]
