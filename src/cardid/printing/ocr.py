"""Read the printed identity off a rectified card with Tesseract OCR.

The collector number is ~1.5 mm tall, a few pixels at the embedding's input size: it is read from
the rectified crop at full resolution. Where it is printed depends on the era: bottom left from
Sun & Moon on (``G PAL EN 012/193``), bottom right before (``58/102`` on Wizards of the Coast
cards, ``35/108`` on XY). The corners the candidates' eras use are cut out, scaled so the digits
are ~25 px tall, and read by Tesseract (sparse-text mode), one call per corner and preparation
pass until a reading agrees with a candidate; what it reads is parsed by
:mod:`cardid.printing.number`.

Tesseract is the Debian package ``tesseract-ocr`` (Apache-2.0; ``apt-get install tesseract-ocr``):
not a pip dependency. Without it :func:`tesseract_available` is false and recognition goes on
without reading numbers (and says so), never inventing one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from cardid.errors import CardIDError
from cardid.printing.number import Reading, readings_from_text

#: where the collector number is printed, as (top, bottom, left, right) fractions of the card:
#: bottom left from Sun & Moon on, bottom right before (Wizards of the Coast to XY)
REGIONS = {"left": (0.90, 0.97, 0.0, 0.5), "right": (0.925, 1.0, 0.55, 1.0)}
LEFT_SERIES = ("Sun & Moon", "Sword & Shield", "Scarlet & Violet", "Synthetic")  # and cardid's own renderer
RIGHT_SERIES = ("Base", "Gym", "Neo", "E-Card", "EX", "POP", "NP", "Diamond & Pearl", "Platinum")
RIGHT_SERIES += ("HeartGold & SoulSilver", "Black & White", "XY")
#: card height the regions are scaled to (the digits are then ~25 px tall, what Tesseract likes)
READ_HEIGHT = 1300
#: a crop this small (card height in px) holds no legible number: not even tried
MIN_CARD_HEIGHT = 300


def layout_of(series: str | None) -> tuple[str, ...]:
    """Which bottom corner(s) a card of this series prints its number in (both when unknown)."""
    if series in LEFT_SERIES:
        return ("left",)
    return ("right",) if series in RIGHT_SERIES else ("left", "right")


def tesseract_binary() -> str | None:
    return os.environ.get("CARDID_TESSERACT") or shutil.which("tesseract")


def tesseract_available() -> bool:
    return tesseract_binary() is not None


@dataclass
class PrintedReading:
    """What one card's bottom strip said: the raw text, the parsed readings, the time taken."""

    text: str
    readings: list[Reading] = field(default_factory=list)
    ms: float = 0.0
    skipped: str | None = None  # why nothing was read: "no_tesseract", "too_small", "ocr_error: …"

    @property
    def legible(self) -> bool:
        return bool(self.readings)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "readings": [r.to_dict() for r in self.readings],
            "ms": round(self.ms, 1),
            "skipped": self.skipped,
        }


def number_region(card: np.ndarray, layout: str) -> np.ndarray:
    """The corner of an upright rectified card where ``layout`` prints the number, grey, scaled
    so the digits are ~25 px tall (one Tesseract call each: two corners stacked read worse)."""
    if card.ndim != 3 or card.shape[2] != 3 or card.dtype != np.uint8:
        raise CardIDError(f"expected an RGB uint8 card crop, got {card.shape} {card.dtype}")
    if layout not in REGIONS:
        raise CardIDError(f"unknown number layout {layout!r}; known: {', '.join(REGIONS)}")
    h, w = card.shape[:2]
    y0, y1, x0, x1 = REGIONS[layout]
    p = cv2.cvtColor(card[round(h * y0) : round(h * y1), round(w * x0) : round(w * x1)], cv2.COLOR_RGB2GRAY)
    s = READ_HEIGHT / h
    size = (max(1, round(p.shape[1] * s)), max(1, round(p.shape[0] * s)))
    # grey, not binarised: Tesseract binarises itself (a global Otsu loses text beside a white corner)
    return cv2.resize(p, size, interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)


def _local_threshold(grey: np.ndarray) -> np.ndarray:
    return cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 10)


def _sharpened(grey: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(grey, 1.8, cv2.GaussianBlur(grey, (0, 0), 2), -0.8, 0)


#: how a corner is prepared for Tesseract, in the order tried
PASSES = (lambda g: g, _local_threshold, _sharpened)


def ocr_text(grey: np.ndarray, timeout_s: float = 5.0) -> str:
    """Tesseract's text for a grey image (sparse text: numbers sit among symbols)."""
    exe = tesseract_binary()
    if exe is None:
        raise CardIDError("tesseract is not installed (Debian/Ubuntu: apt-get install tesseract-ocr)")
    ok, png = cv2.imencode(".png", grey)
    if not ok:
        raise CardIDError("could not encode the strip for OCR")
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # its OpenMP threads only slow one small image down
    try:
        p = subprocess.run(
            # sparse text (numbers sit among symbols); 300 dpi said, not Tesseract's 70 dpi guess
            [exe, "stdin", "stdout", "--psm", "11", "--dpi", "300", "-l", "eng"],
            input=png.tobytes(),
            capture_output=True,
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        raise CardIDError(f"tesseract took over {timeout_s} s") from e
    if p.returncode != 0:
        raise CardIDError(f"tesseract failed: {p.stderr.decode(errors='replace').strip()[-300:]}")
    return p.stdout.decode(errors="replace")


def read_printed(
    card: np.ndarray,
    layouts: tuple[str, ...] = ("left", "right"),
    min_height: int = MIN_CARD_HEIGHT,
    accept: Callable[[Reading], bool] | None = None,
) -> PrintedReading:
    """Read the collector number (and total, set code) off an upright rectified card crop, in the
    corners ``layouts`` name (:func:`layout_of` the candidates' series).

    Each corner is read as it is (grey: best on real photos, 10 of 10 dev crops), then, while
    nothing acceptable came out, locally thresholded and sharpened (flat or soft print). Without
    ``accept`` any reading is acceptable; the matcher passes "agrees with one of the candidates",
    so a misread sends it to the next pass instead of ending the search."""
    t = time.perf_counter()
    if not tesseract_available():
        return PrintedReading("", skipped="no_tesseract")
    if card.shape[0] < min_height:
        return PrintedReading("", skipped="too_small")
    ok = accept or (lambda r: True)
    texts, readings = [], []
    try:
        for layout in layouts:
            grey = number_region(card, layout)
            for prepare in PASSES:
                text = ocr_text(prepare(grey))
                texts.append(text)
                found = [r for r in readings_from_text(text) if r not in readings]
                readings += found
                if any(ok(r) for r in found):
                    break
            if any(ok(r) for r in readings):
                break
    except CardIDError as e:  # OCR broke (a crash, a timeout): the decision goes on without it
        return PrintedReading("\n".join(texts), readings, (time.perf_counter() - t) * 1e3, f"ocr_error: {e}")
    return PrintedReading("\n".join(texts), readings, (time.perf_counter() - t) * 1e3)
