"""Read the printed identity off a rectified card with Tesseract OCR.

The collector number is ~1.5 mm tall, a few pixels at the embedding's input size: it is read from
the rectified crop at full resolution. Where it is printed depends on the era: bottom left from
Sword & Shield on (``D``/``E``… regulation mark, ``PAL EN 012/193``), bottom right on Wizards of
the Coast cards (``58/102``). Both bottom corners are cut out, scaled so the text is ~30 px tall,
contrast-equalised and read in one Tesseract call; what it reads is parsed by
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
from dataclasses import dataclass, field

import cv2
import numpy as np

from cardid.errors import CardIDError
from cardid.printing.number import Reading, readings_from_text

#: the bottom strip holding the number, as fractions of the card's height and width
STRIP_TOP = 0.875
CORNER_WIDTH = 0.56
#: card height the corners are scaled to (the number's digits are then ~30 px tall)
READ_HEIGHT = 1600
#: a crop this small (card height in px) holds no legible number: not even tried
MIN_CARD_HEIGHT = 300


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
    skipped: str | None = None  # why nothing was read: "no_tesseract", "too_small"

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


def number_regions(card: np.ndarray) -> np.ndarray:
    """The two bottom corners of an upright rectified card, stacked into one grey image for OCR."""
    if card.ndim != 3 or card.shape[2] != 3 or card.dtype != np.uint8:
        raise CardIDError(f"expected an RGB uint8 card crop, got {card.shape} {card.dtype}")
    h, w = card.shape[:2]
    grey = cv2.cvtColor(card, cv2.COLOR_RGB2GRAY)
    y0, cw = round(h * STRIP_TOP), round(w * CORNER_WIDTH)
    left, right = grey[y0:h, :cw], grey[y0:h, w - cw :]
    scale = READ_HEIGHT / h
    size = (round(cw * scale), round((h - y0) * scale))
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 8))
    parts = [clahe.apply(cv2.resize(p, size, interpolation=interp)) for p in (left, right)]
    gap = np.full((24, size[0]), 255, np.uint8)
    return np.vstack([parts[0], gap, parts[1]])


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
            [exe, "stdin", "stdout", "--psm", "11", "-l", "eng"],
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


def read_printed(card: np.ndarray) -> PrintedReading:
    """Read the collector number (and total, set code) off an upright rectified card crop."""
    t = time.perf_counter()
    if not tesseract_available():
        return PrintedReading("", skipped="no_tesseract")
    if card.shape[0] < MIN_CARD_HEIGHT:
        return PrintedReading("", skipped="too_small")
    text = ocr_text(number_regions(card))
    return PrintedReading(text, readings_from_text(text), (time.perf_counter() - t) * 1e3)
