"""Camera-photo simulation: what a phone sees of a physical card.

Turns a clean scan into (a) a *rectified crop* — the card as a detector + perspective correction
would hand it to the embedder, small corner errors and background slivers included — or (b) a
*scene* with one or several cards and their four corner points (for the detector).

The physical model, in order: card surface (holo shimmer) → rounded die-cut corners → 3-D pose
(pitch/yaw/roll, focal length, distance) → background (wood, cloth, playmat, table, clutter) with a
soft shadow → sleeve / top-loader → fingers → illumination field and white balance → specular glare
and sleeve sheen (added in float, clipped once) → defocus or motion blur → sensor noise (shot +
read) → ISP sharpening → JPEG → (crops) rectification with corner error.

Rules that protect identity: **no horizontal flips, no large hue shifts**. White balance is a
bounded per-channel gain (a colour cast, not a hue rotation) and holo shimmer is a low-amplitude
additive pattern, so the printed text and colours stay what identifies the card.

Every random draw comes from the ``numpy.random.Generator`` passed in: a seed reproduces a view.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cardid.preprocess import CARD_ASPECT
from cardid.synth.camera import Canvas, camera_effects
from cardid.synth.objects import draw_sleeve
from cardid.synth.pose import card_corners, project_card, project_plane, rounded_card_mask
from cardid.synth.settings import PRESETS, PhotoSimConfig
from cardid.synth.surfaces import background, draw_fingers, holo_shimmer


@dataclass
class SceneCard:
    """One card in a scene: which scan, its four corners (TL TR BR BL of the card), visibility."""

    index: int
    corners: np.ndarray
    visible: float


@dataclass
class Scene:
    image: np.ndarray  # RGB uint8
    cards: list[SceneCard]


@functools.lru_cache(maxsize=256)
def _alpha(h: int, w: int) -> np.ndarray:
    return rounded_card_mask(h, w)


def prepare_scan(scan: np.ndarray, cfg: PhotoSimConfig = PRESETS["default"]) -> np.ndarray:
    """Resize a scan once to the largest card size a crop renders (callers cache the result).

    That size is exactly ``crop_height × crop_width`` (card aspect), so a full-size view needs no
    further resize. Smaller scans are kept as they are (they are upsampled per view).
    """
    if scan.shape[0] <= cfg.crop_height:
        return scan
    interp = cv2.INTER_AREA
    return cv2.resize(scan, (cfg.crop_width, cfg.crop_height), interpolation=interp)


def _card_layer(rng, scan: np.ndarray, cw: int, ch: int, cfg: PhotoSimConfig) -> np.ndarray:
    """The scan resized to its on-screen size (uint8 RGB), with holo shimmer when drawn."""
    if (ch, cw) == scan.shape[:2]:
        card = scan
    else:
        interp = cv2.INTER_AREA if cw < scan.shape[1] else cv2.INTER_LINEAR
        card = cv2.resize(scan, (cw, ch), interpolation=interp)
    if rng.random() < cfg.p_holo:
        card = holo_shimmer(rng, card, rng.uniform(*cfg.holo_strength))
    return card


def _composite(canvas: Canvas, idx: int, card: np.ndarray, corners: np.ndarray, shadow: bool = True) -> None:
    """Warp a card (rounded die-cut corners, soft drop shadow) onto the canvas in place."""
    img = canvas.img
    h, w = img.shape[:2]
    ch, cw = card.shape[:2]
    alpha = _alpha(ch, cw)
    H = cv2.getPerspectiveTransform(card_corners(cw, ch), corners)
    warped = cv2.warpPerspective(card, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.warpPerspective(alpha, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = a.astype(np.float32) * np.float32(1 / 255)
    # the same warp at the smooth maps' resolution: gloss, and a shifted blurred copy as shadow
    Hq = np.diag([1 / canvas.Q, 1 / canvas.Q, 1.0]) @ H
    aq = cv2.warpPerspective(alpha, Hq, canvas.q_size, flags=cv2.INTER_AREA).astype(np.float32) * (1 / 255)
    if shadow:
        off = np.float32([[1, 0, 0.02 * cw / canvas.Q], [0, 1, 0.03 * cw / canvas.Q]])
        sh = cv2.GaussianBlur(cv2.warpAffine(aq, off, canvas.q_size), (0, 0), max(0.5, 0.03 * cw / canvas.Q))
        canvas.shade *= (1 - 0.45 * sh) * (1 - aq) + aq  # the card itself is not in its own shadow
    img[:] = cv2.blendLinear(warped, img, a, 1 - a)
    np.maximum(canvas.gloss, aq * 0.8, out=canvas.gloss)
    if canvas.labels is not None:
        canvas.labels[a > 0.5] = idx


def render_crop(
    scan: np.ndarray, rng: np.random.Generator, cfg: PhotoSimConfig = PRESETS["default"]
) -> np.ndarray:
    """A rectified camera crop of ``scan`` (RGB uint8) at ``cfg.crop_height × cfg.crop_width``."""
    ow, oh = cfg.crop_width, cfg.crop_height
    s = math.exp(rng.uniform(*np.log(cfg.scale)))
    # A card larger than the crop is shot at high resolution and downsampled by the rectifier,
    # which averages sensor noise: render at crop size with the noise reduced by the same factor.
    noise_gain = 1 / max(1.0, s)
    s = min(s, 1.0)
    cw, ch = max(16, round(ow * s)), max(22, round(oh * s))
    W, H = round(cw * 1.24), round(ch * 1.18)
    corners = project_card(rng, cw, ch, (W / 2, H / 2), math.hypot(W, H), cfg)
    # keep the whole card in frame: shrink around the centre if the pose pushed a corner out
    lo, hi = corners.min(0), corners.max(0)
    fit = min(1.0, (W * 0.96) / (hi[0] - lo[0]), (H * 0.96) / (hi[1] - lo[1]))
    corners = ((corners - (lo + hi) / 2) * fit + [W / 2, H / 2]).astype(np.float32)
    canvas = Canvas.new(background(rng, H, W))
    _composite(canvas, 0, _card_layer(rng, scan, cw, ch, cfg), corners)
    if rng.random() < cfg.p_sleeve:
        draw_sleeve(rng, canvas, corners, cfg)
    if rng.random() < cfg.p_finger:
        draw_fingers(rng, canvas.img, corners, n=int(rng.integers(1, 3)))
    photo = camera_effects(rng, canvas, cfg, noise_gain)
    # rectification as a detector would do it: estimated corners = true corners + error
    est = corners + rng.normal(0, cfg.corner_error * cw, (4, 2)).astype(np.float32)
    M = cv2.getPerspectiveTransform(est, card_corners(ow, oh))
    return cv2.warpPerspective(photo, M, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def render_scene(
    scans: list[np.ndarray],
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 640),
    layout: str = "scatter",
    cfg: PhotoSimConfig = PRESETS["default"],
    distractors: Sequence[np.ndarray] = (),
    holders: Sequence[str | None] | None = None,
) -> Scene:
    """A photo (H×W = ``size``) of the given scans: ``scatter`` (loose cards, may overlap or leave
    the frame), ``binder`` (a page of pockets in a grid, one camera pose for the page), ``table``
    (laid out apart, each turned a little, as a collector photographs a few cards) or, with no
    scans, a negative photo without any card. Corners are in image coordinates and may lie
    outside the frame; ``visible`` is the fraction of the card's area that is visible.

    ``distractors`` (images of things that are not card faces: card backs, phones, paper…) lie on
    the table under the cards; ``holders[i] == "slab"`` puts card ``i`` in a graded slab, whose
    corners are the card's own, not the slab's."""
    if layout not in ("scatter", "binder", "table"):
        raise ValueError(f"unknown scene layout {layout!r} (scatter, binder, table)")
    H, W = size
    canvas = Canvas.new(background(rng, H, W), labels=True)
    img, labels = canvas.img, canvas.labels
    diag = math.hypot(W, H)
    for obj in distractors:  # under the cards; never labelled
        oh, ow = obj.shape[:2]
        c = (rng.uniform(0.15, 0.85) * W, rng.uniform(0.15, 0.85) * H)
        roll = rng.uniform(-180, 180) if rng.random() < 0.3 else None
        _composite(canvas, -1, obj, project_card(rng, ow, oh, c, diag, cfg, roll_deg=roll))
    placed: list[tuple[int, np.ndarray]] = []
    n = len(scans)
    if layout == "binder" and n:
        cols = 3 if n <= 9 else 4
        rows = math.ceil(n / cols)
        pitch = min(W * 0.9 / cols, H * 0.9 / rows * CARD_ASPECT)
        cw, ch = pitch * 0.92, pitch * 0.92 / CARD_ASPECT
        grid = np.array(
            [
                [(c - (cols - 1) / 2) * pitch, (r - (rows - 1) / 2) * pitch / CARD_ASPECT]
                for r in range(rows)
                for c in range(cols)
            ][:n],
            np.float32,
        )
        tilt = np.radians(rng.uniform(-cfg.max_tilt_deg, cfg.max_tilt_deg, 2) * 0.6)
        roll = math.radians(rng.uniform(-cfg.max_roll_deg, cfg.max_roll_deg) * 0.5)
        f = diag * rng.uniform(*cfg.focal)
        half = np.array([cols * pitch / 2 + 8, rows * pitch / CARD_ASPECT / 2 + 8], np.float32)
        page = project_plane(
            np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32) * half,
            tilt[0],
            tilt[1],
            roll,
            f,
            (W / 2, H / 2),
        )
        cv2.fillPoly(
            img, [page.astype(np.int32)], tuple(int(v) for v in rng.integers(10, 80, 3)), cv2.LINE_AA
        )
        for i, g in enumerate(grid):
            pts = card_corners(cw, ch) - [cw / 2, ch / 2] + g
            placed.append((i, project_plane(pts, tilt[0], tilt[1], roll, f, (W / 2, H / 2))))
    elif layout == "table" and n:  # laid out apart on a table, one camera pose for the table
        cols = min(n, 4) if n <= 4 else math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        pitch = min(W * 0.86 / cols, H * 0.86 / rows * CARD_ASPECT)
        cw = pitch * rng.uniform(0.62, 0.72)
        ch = cw / CARD_ASPECT
        tilt = np.radians(rng.uniform(-cfg.max_tilt_deg, cfg.max_tilt_deg, 2) * 0.5)
        roll = math.radians(rng.uniform(-cfg.max_roll_deg, cfg.max_roll_deg) * 0.5)
        f = diag * rng.uniform(*cfg.focal) * 1.5
        for i in range(n):
            r, c = divmod(i, cols)
            g = np.array([(c - (cols - 1) / 2) * pitch, (r - (rows - 1) / 2) * pitch / CARD_ASPECT])
            g += rng.uniform(-0.06, 0.06, 2) * pitch
            a = math.radians(rng.uniform(-10, 10))
            rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
            pts = (card_corners(cw, ch) - [cw / 2, ch / 2]) @ rot.T + g
            placed.append((i, project_plane(pts, tilt[0], tilt[1], roll, f, (W / 2, H / 2))))
    else:
        for i in range(n):
            cw = rng.uniform(0.18, 0.45) * min(W, H)
            c = (rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * H)
            placed.append(
                (
                    i,
                    project_card(
                        rng,
                        cw,
                        cw / CARD_ASPECT,
                        c,
                        diag,
                        cfg,
                        roll_deg=rng.uniform(-180, 180) if rng.random() < 0.3 else None,
                    ),
                )
            )
    areas = {}
    for i, corners in placed:
        cw = float(np.linalg.norm(corners[1] - corners[0]))
        card = _card_layer(rng, scans[i], max(16, round(cw)), max(22, round(cw / CARD_ASPECT)), cfg)
        if holders is not None and holders[i] == "slab" and layout == "scatter":
            from cardid.synth.objects import slab

            holder, inner = slab(rng, card)
            ch, cwi = card.shape[:2]
            Hc = cv2.getPerspectiveTransform(card_corners(cwi, ch), corners)
            hh, hw = holder.shape[:2]
            outer = cv2.perspectiveTransform((card_corners(hw, hh) - inner[0])[None], Hc)[0]
            _composite(canvas, i, holder, outer.astype(np.float32), shadow=True)
            inside = np.zeros(labels.shape, np.uint8)
            cv2.fillPoly(inside, [np.round(corners).astype(np.int32)], 1)
            labels[(labels == i) & (inside == 0)] = -1  # the slab is not the card
        else:
            _composite(canvas, i, card, corners, shadow=layout != "binder")
        areas[i] = abs(cv2.contourArea(corners))
    if layout == "binder" and n:
        draw_sleeve(rng, canvas, page, cfg.model_copy(update={"p_toploader": 0.0}))
    if n and rng.random() < cfg.p_finger:
        cover = draw_fingers(rng, img, placed[int(rng.integers(0, n))][1], n=1)
        labels[cover > 0.5] = -1
    photo = camera_effects(rng, canvas, cfg)
    counts = np.bincount(labels[labels >= 0].ravel(), minlength=n)
    cards = [SceneCard(i, corners, float(min(1.0, counts[i] / max(areas[i], 1.0)))) for i, corners in placed]
    return Scene(photo, cards)
