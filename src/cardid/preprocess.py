"""The one preprocessing contract.

Training, evaluation, export, calibration, DB build and runtime all turn pixels into model input
through :class:`Preprocess` and nothing else. The contract is a small frozen dataclass, serialised
as JSON beside every artefact and compared on load (:meth:`Preprocess.check_same`).

Aspect ratio
------------
A card is 63×88 mm (aspect 0.716). Squashing it into a square distorts it by 40 %, so the
default policy is ``"pad"``: the crop is resized to fit inside ``height × width`` keeping its
aspect, centred, and the remaining border is filled with the mean colour (which normalises to
zero). For a square 224 input the card occupies 160×224 pixels. Backbones that accept
rectangles (DINOv3 uses RoPE, ConvNeXt is fully convolutional) can use the ``portrait224``
preset (320×224, H×W), which fits a card with only 2 % padding. ``"stretch"`` exists for
explicit opt-in and ``"crop"`` (centre crop after resizing the short side) for non-card inputs.

Pixel pipeline (exactly, in this order)
---------------------------------------
1. input: RGB uint8 (H, W, 3). PIL images are converted with transparency composited onto
   :data:`cardid.images.CARD_BACKGROUND_RGB`.
2. geometry: ``cv2.resize`` with ``INTER_AREA`` when shrinking and ``INTER_LINEAR`` when
   enlarging (per axis scale < 1 → area), then pad/crop per ``resize``.
3. values: ``x / input_scale``, then ``(x - mean) / std`` per channel (``mean``/``std`` are always
   listed in RGB order), then channels reordered to ``channel_order``.
4. layout: float32, channels first (C, H, W); batches are (N, C, H, W).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

from cardid.errors import CardIDError, PreprocessMismatch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Physical card aspect ratio, width / height (63 mm × 88 mm).
CARD_ASPECT = 63.0 / 88.0

ResizePolicy = Literal["pad", "stretch", "crop"]
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Preprocess:
    """How a card crop becomes a model input tensor. Immutable, serialisable, comparable."""

    height: int = 224
    width: int = 224
    resize: ResizePolicy = "pad"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: Literal["RGB", "BGR"] = "RGB"
    input_scale: float = 255.0
    layout: Literal["NCHW"] = "NCHW"
    dtype: Literal["float32"] = "float32"
    interpolation: Literal["area_linear"] = "area_linear"
    schema_version: int = field(default=SCHEMA_VERSION)

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise CardIDError(f"preprocess {name} must be an integer, got {v!r}")
        if not isinstance(self.input_scale, int | float) or self.input_scale <= 0:
            raise CardIDError(f"preprocess input_scale must be a positive number, got {self.input_scale!r}")
        try:
            mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        except (TypeError, ValueError):
            raise CardIDError(f"mean/std must be numbers, got {self.mean!r} / {self.std!r}") from None
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        if self.height < 8 or self.width < 8:
            raise CardIDError(f"preprocess size too small: {self.height}x{self.width}")
        if self.resize not in ("pad", "stretch", "crop"):
            raise CardIDError(f"unknown resize policy {self.resize!r} (pad, stretch, crop)")
        if self.channel_order not in ("RGB", "BGR"):
            raise CardIDError(f"unknown channel order {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise CardIDError(f"mean/std must be 3 values with std > 0, got {self.mean} / {self.std}")
        if self.schema_version != SCHEMA_VERSION:
            raise CardIDError(f"unsupported preprocess schema_version {self.schema_version}")
        # Normalise sequences from JSON/YAML to tuples so equality and hashing are exact.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise CardIDError(f"unknown preprocess fields {sorted(unknown)} (known: {sorted(known)})")
        if not isinstance(d, dict):
            raise CardIDError(f"a preprocessing contract must be an object, got {type(d).__name__}")
        try:
            return cls(**{k: tuple(v) if k in ("mean", "std") else v for k, v in d.items()})
        except TypeError as e:  # e.g. a number where a list of three belongs
            raise CardIDError(f"malformed preprocessing contract ({e})") from e

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def fingerprint(self) -> str:
        """Short stable hash of the contract, for artefact names and quick comparison."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def save(self, path: str | Path) -> None:
        from cardid.io import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Preprocess:
        from cardid.io import read_json

        return cls.from_dict(read_json(path, "preprocess contract"))

    def check_same(self, other: Preprocess, context: str = "") -> None:
        """Raise :class:`PreprocessMismatch` naming every differing field."""
        a, b = self.to_dict(), other.to_dict()
        diffs = [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k]]
        if diffs:
            where = f" ({context})" if context else ""
            raise PreprocessMismatch("preprocessing contracts differ" + where + ": " + "; ".join(diffs))

    # ----------------------------------------------------------------- pixels
    @property
    def pad_rgb(self) -> tuple[int, int, int]:
        """Fill colour for padding: the mean, so the border normalises to ~0."""
        return tuple(round(m * self.input_scale) for m in self.mean)  # type: ignore[return-value]

    def content_box(self, src_h: int, src_w: int) -> tuple[int, int, int, int]:
        """Where an ``src_h × src_w`` image lands in the output as (x0, y0, w, h)."""
        if self.resize == "stretch":
            return 0, 0, self.width, self.height
        s = min(self.width / src_w, self.height / src_h)
        if self.resize == "crop":
            s = max(self.width / src_w, self.height / src_h)
        w, h = max(1, round(src_w * s)), max(1, round(src_h * s))
        return (self.width - w) // 2, (self.height - h) // 2, w, h

    def resize_image(self, img: np.ndarray | Image.Image) -> np.ndarray:
        """Geometry only: RGB uint8 in, RGB uint8 ``(height, width, 3)`` out.

        This is also what a device calibration set stores (uint8 NHWC) when normalisation runs on chip.
        """
        rgb = as_rgb_uint8(img)
        x0, y0, w, h = self.content_box(rgb.shape[0], rgb.shape[1])
        interp = cv2.INTER_AREA if (w < rgb.shape[1] and h < rgb.shape[0]) else cv2.INTER_LINEAR
        resized = cv2.resize(rgb, (w, h), interpolation=interp)
        if self.resize == "stretch":
            return resized
        out = np.empty((self.height, self.width, 3), np.uint8)
        out[:] = self.pad_rgb
        # Paste with clipping; for "crop" the offsets are negative.
        sx0, sy0 = max(0, -x0), max(0, -y0)
        dx0, dy0 = max(0, x0), max(0, y0)
        cw, ch = min(w - sx0, self.width - dx0), min(h - sy0, self.height - dy0)
        out[dy0 : dy0 + ch, dx0 : dx0 + cw] = resized[sy0 : sy0 + ch, sx0 : sx0 + cw]
        return out

    def normalize(self, rgb: np.ndarray) -> np.ndarray:
        """Values and layout: RGB uint8 (H, W, 3) → float32 (3, H, W)."""
        x = rgb.astype(np.float32) * np.float32(1.0 / self.input_scale)
        x -= np.asarray(self.mean, np.float32)
        x *= np.asarray([1.0 / s for s in self.std], np.float32)
        if self.channel_order == "BGR":
            x = x[..., ::-1]
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def __call__(self, img: np.ndarray | Image.Image) -> np.ndarray:
        """RGB uint8 image (any size) → float32 (3, height, width) model input."""
        return self.normalize(self.resize_image(img))

    def batch(self, imgs: list[np.ndarray] | list[Image.Image]) -> np.ndarray:
        return (
            np.stack([self(im) for im in imgs])
            if imgs
            else np.zeros((0, 3, self.height, self.width), np.float32)
        )

    def denormalize(self, chw: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalize` (for previews): float32 (3, H, W) → RGB uint8 (H, W, 3)."""
        x = np.asarray(chw, np.float32).transpose(1, 2, 0)
        if self.channel_order == "BGR":
            x = x[..., ::-1]
        x = x * np.asarray(self.std, np.float32) + np.asarray(self.mean, np.float32)
        return np.clip(np.rint(x * self.input_scale), 0, 255).astype(np.uint8)


def as_rgb_uint8(img: np.ndarray | Image.Image) -> np.ndarray:
    """Accept a PIL image or an RGB uint8 array; anything else is an error, not a silent cast."""
    if isinstance(img, Image.Image):
        from cardid.images import composite_rgba

        return np.asarray(composite_rgba(img), dtype=np.uint8)
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise CardIDError(f"expected an RGB uint8 image (H, W, 3), got {arr.dtype} {arr.shape}")
    return arr


#: Named contracts. Each model registers which one it uses; artefacts store the full contract.
PRESETS: dict[str, Preprocess] = {
    "square224": Preprocess(224, 224, "pad"),
    "portrait224": Preprocess(320, 224, "pad"),
    "square384": Preprocess(384, 384, "pad"),
    "portrait128": Preprocess(176, 128, "pad"),
    "portrait160": Preprocess(224, 160, "pad"),
    "tiny64": Preprocess(64, 64, "pad"),
}


def get_preset(name: str) -> Preprocess:
    try:
        return PRESETS[name]
    except KeyError:
        raise CardIDError(f"unknown preprocess preset {name!r} (known: {', '.join(PRESETS)})") from None
