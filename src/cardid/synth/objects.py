"""Things in real card photos that are not card faces: hard negatives and card holders.

A detector trained only on card faces over tables fires on anything card-shaped. Real listing and
collection photos also hold card backs (front+back listings), phones, books, sheets of paper and
hands — and cards inside holders: penny sleeves, top-loaders and graded slabs, where the box must
be the card, not the holder. Every drawing here is procedural (no image assets) and seeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from cardid.preprocess import CARD_ASPECT
from cardid.synth.camera import Canvas

if TYPE_CHECKING:
    from cardid.synth.settings import PhotoSimConfig

DISTRACTORS = ("card_back", "phone", "paper", "book")


def card_back(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A trading-card back: blue field with swirls, a darker rim, a red-and-white ball, a logo band."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xx - w * 0.5) / w, (yy - h * 0.5) / h)
    base = np.array(rng.uniform([20, 60, 140], [50, 100, 200]), np.float32)
    img = base[None, None] * (1.25 - 0.8 * r[..., None])
    for _ in range(int(rng.integers(3, 7))):  # swirls
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        ax = (int(rng.uniform(0.2, 0.7) * w), int(rng.uniform(0.1, 0.4) * h))
        cv2.ellipse(
            img,
            c,
            ax,
            float(rng.uniform(0, 180)),
            0,
            360,
            tuple(float(v) for v in base * 1.5),
            max(2, w // 40),
        )
    img = np.clip(img, 0, 255).astype(np.uint8)
    rim = max(2, round(0.05 * w))
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), tuple(int(v) for v in base * 0.6), rim)
    c = (int(w * rng.uniform(0.4, 0.6)), int(h * rng.uniform(0.45, 0.6)))
    rad = int(w * rng.uniform(0.22, 0.3))
    cv2.ellipse(img, c, (rad, rad), 0, 180, 360, (200, 30, 30), -1, cv2.LINE_AA)
    cv2.ellipse(img, c, (rad, rad), 0, 0, 180, (235, 235, 235), -1, cv2.LINE_AA)
    cv2.line(img, (c[0] - rad, c[1]), (c[0] + rad, c[1]), (20, 20, 20), max(2, rad // 6))
    cv2.circle(img, c, max(3, rad // 4), (240, 240, 240), -1, cv2.LINE_AA)
    cv2.circle(img, c, max(3, rad // 4), (20, 20, 20), max(1, rad // 12), cv2.LINE_AA)
    y = int(h * rng.uniform(0.12, 0.25))
    cv2.rectangle(img, (int(w * 0.15), y), (int(w * 0.85), y + max(4, h // 10)), (250, 205, 30), -1)
    return img


def _text_lines(rng, img: np.ndarray, x0: int, x1: int, y0: int, y1: int, color) -> None:
    h = max(2, (y1 - y0) // int(rng.integers(8, 20)))
    for y in range(y0, y1 - h, 2 * h):
        end = int(x0 + (x1 - x0) * rng.uniform(0.5, 1.0))
        cv2.rectangle(img, (x0, y), (end, y + max(1, h // 2)), color, -1)


def phone(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A phone seen from the front: dark body, a bright screen with an app grid or a photo."""
    img = np.full((h, w, 3), rng.integers(5, 40), np.uint8)
    m = max(2, w // 16)
    screen = np.linspace(rng.uniform(40, 200, 3), rng.uniform(40, 255, 3), h - 4 * m).astype(np.uint8)
    img[2 * m : h - 2 * m, m : w - m] = screen[:, None, :]
    for _ in range(int(rng.integers(4, 16))):
        x, y = int(rng.uniform(m, w - 3 * m)), int(rng.uniform(2 * m, h - 4 * m))
        cv2.rectangle(img, (x, y), (x + 2 * m, y + 2 * m), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return img


def paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A sheet of paper or a price label: off-white with lines of grey text."""
    img = np.full((h, w, 3), rng.integers(215, 250), np.uint8)
    m = max(2, w // 10)
    _text_lines(rng, img, m, w - m, m, h - m, (90, 90, 90))
    return img


def book(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A book or box cover: a saturated colour, a title block and a picture rectangle."""
    img = np.full((h, w, 3), rng.integers(20, 235, 3), np.uint8)
    m = max(2, w // 10)
    cv2.rectangle(img, (m, m), (w - m, m + h // 8), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    cv2.rectangle(img, (m, h // 3), (w - m, h - 2 * m), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    _text_lines(rng, img, m, w - m, h // 3 + m, h - 3 * m, tuple(int(v) for v in rng.integers(0, 255, 3)))
    return img


def distractor(rng: np.random.Generator, kind: str, height: int) -> np.ndarray:
    """A distractor of ``kind`` about ``height`` px tall, at its own typical aspect ratio."""
    aspect = {
        "card_back": CARD_ASPECT,
        "phone": rng.uniform(0.45, 0.52),
        "paper": rng.uniform(0.6, 0.8),
        "book": rng.uniform(0.6, 0.85),
    }[kind]
    h = max(24, int(height))
    w = max(16, round(h * aspect))
    return {"card_back": card_back, "phone": phone, "paper": paper, "book": book}[kind](rng, h, w)


def slab(rng: np.random.Generator, card: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A graded slab around ``card``: clear plastic with a grader's label on top.

    Returns (the slab image, the card's four corners inside it, TL TR BR BL) — the corners are
    what a detector must find; the slab is the holder."""
    ch, cw = card.shape[:2]
    mx, top, bottom = round(0.09 * cw), round(0.34 * ch), round(0.05 * ch)
    H, W = ch + top + bottom, cw + 2 * mx
    plastic = np.array(rng.uniform([200, 205, 210], [235, 238, 242]), np.float32)
    img = np.empty((H, W, 3), np.uint8)
    img[:] = plastic.astype(np.uint8)
    # label: white or coloured, a red band, text lines and a grade
    ly0, ly1 = round(0.05 * ch), top - round(0.06 * ch)
    label_bg = (250, 250, 250) if rng.random() < 0.6 else tuple(int(v) for v in rng.integers(120, 255, 3))
    cv2.rectangle(img, (mx // 2, ly0), (W - mx // 2, ly1), label_bg, -1)
    cv2.rectangle(img, (mx // 2, ly0), (W - mx // 2, ly1), (200, 30, 30), max(1, W // 80))
    _text_lines(rng, img, mx, int(W * 0.7), ly0 + 3, ly1 - 3, (30, 30, 30))
    cv2.putText(
        img,
        str(int(rng.integers(6, 11))),
        (int(W * 0.75), ly1 - 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        max(0.3, (ly1 - ly0) / 40),
        (20, 20, 20),
        max(1, W // 100),
    )
    # the card window: a thin inner frame, then the card
    y0 = top
    cv2.rectangle(img, (mx - 3, y0 - 3), (mx + cw + 2, y0 + ch + 2), tuple(int(v) for v in plastic * 0.8), 2)
    img[y0 : y0 + ch, mx : mx + cw] = card
    corners = np.array([[mx, y0], [mx + cw, y0], [mx + cw, y0 + ch], [mx, y0 + ch]], np.float32)
    return img, corners


def draw_sleeve(rng, canvas: Canvas, corners: np.ndarray, cfg: PhotoSimConfig) -> None:
    """Penny sleeve / top-loader: haze over the card, a slightly larger plastic edge, more gloss."""
    img = canvas.img
    h, w = img.shape[:2]
    center = corners.mean(0)
    grow = 1.03 if rng.random() > cfg.p_toploader / max(cfg.p_sleeve, 1e-6) else 1.12
    outer = (corners - center) * grow + center
    m = np.zeros((h, w), np.float32)
    cv2.fillPoly(m, [outer.astype(np.int32)], 1.0, cv2.LINE_AA)
    m *= rng.uniform(0.02, 0.07)
    img[:] = cv2.blendLinear(img, np.full_like(img, 255), 1 - m, m)
    cv2.polylines(img, [outer.astype(np.int32)], True, (217, 217, 217), max(1, round(w * 0.004)), cv2.LINE_AA)
    cv2.fillPoly(canvas.gloss, [(outer / canvas.Q).astype(np.int32)], 1.0, cv2.LINE_AA)
