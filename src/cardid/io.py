"""Atomic writes and checked image loading, shared by every package.

Every artefact is written to a temporary sibling and renamed into place, so an interrupted
command never leaves a half-written file where a complete one is expected.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from cardid.errors import ImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

#: The one background that transparent card corners (pokemontcg PNGs have rounded, transparent
#: corners) are composited onto, everywhere: catalog import, gallery, training, DB build, runtime.
CARD_BACKGROUND_RGB: tuple[int, int, int] = (255, 255, 255)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Read JSON with an error that names the file instead of a bare decoder traceback."""
    from cardid.errors import CardIDError

    path = Path(path)
    if not path.is_file():
        raise CardIDError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CardIDError(f"{what} is not valid JSON: {path} ({e})") from e


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name and move it to ``path`` when the block succeeds.

    If ``path`` exists and ``overwrite`` is false a :class:`~cardid.errors.CardIDError` is raised
    before anything is written; with ``overwrite`` the old directory is replaced only at the end.
    """
    from cardid.errors import CardIDError

    path = Path(path)
    if path.exists() and not overwrite and any(path.iterdir()):
        raise CardIDError(f"output directory is not empty: {path} (use --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def composite_rgba(img: Image.Image, background: tuple[int, int, int] = CARD_BACKGROUND_RGB) -> Image.Image:
    """Flatten any image with transparency onto ``background``; return RGB."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def pil_open(fp, *args, **kwargs):
    """Pillow's own ``Image.open``, even after a library (ultralytics) has replaced it process-wide
    with a version that, on an unreadable file, tries to install a plugin instead of raising
    ``UnidentifiedImageError``."""
    op = Image.open
    module = sys.modules.get(getattr(op, "__module__", "") or "")
    if module is not None and module.__name__.startswith("ultralytics"):
        op = getattr(module, "_image_open", op)
    return op(fp, *args, **kwargs)


def load_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Load an image as an RGB uint8 array (H, W, 3), transparency composited the one defined way."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    try:
        with pil_open(path) as im:
            im.load()
            rgb = composite_rgba(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"corrupt or unsupported image: {path} ({e})") from e
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ImageError(f"image too small or malformed: {path} (shape {arr.shape})")
    return arr


def save_rgb(path: str | os.PathLike[str], rgb: np.ndarray, quality: int = 95) -> None:
    """Save an RGB uint8 array atomically; the format follows the suffix (PNG is lossless)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ImageError(
            f"unsupported image extension {ext!r}: {path} (use one of {', '.join(IMAGE_EXTENSIONS)})"
        )
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise ImageError(f"could not encode image as {ext}: {path}")
    write_bytes_atomic(path, buf.tobytes())
