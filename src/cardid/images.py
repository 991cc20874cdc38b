"""Checked image loading and saving, shared by every package (no torch, no synthesis).

Every photo and scan enters through :func:`load_rgb` or :func:`decode_rgb`: upright by EXIF,
16-bit scaled, transparency composited onto the one card background, refused before decoding
when too large; every image cardid writes leaves through :func:`save_rgb`, atomically.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cardid.errors import ImageError
from cardid.io import write_bytes_atomic

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: What a photo may come as (read only; cardid writes IMAGE_EXTENSIONS): phones save HEIC/HEIF
#: (decoded by the optional ``pi-heif``, extra ``cardid[heic]``) or AVIF; scanners TIFF.
PHOTO_EXTENSIONS = (
    *IMAGE_EXTENSIONS,
    *(".jfif", ".jpe", ".mpo"),  # JPEG by other names (.mpo: a camera's multi-picture JPEG)
    *(".heic", ".heif", ".avif", ".tif", ".tiff", ".gif", ".jp2", ".j2k"),
)
#: ISO-BMFF brands of HEIF images (the ``ftyp`` box at byte 4); AVIF is Pillow's own.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}

#: The one background that transparent card corners (pokemontcg PNGs have rounded, transparent
#: corners) are composited onto, everywhere: catalog import, gallery, training, DB build, runtime.
CARD_BACKGROUND_RGB: tuple[int, int, int] = (255, 255, 255)


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


#: Images with more pixels than this are refused before decoding (a decompression bomb is a few
#: KB on disk and gigabytes in memory); ``CARDID_MAX_PIXELS`` changes it.
DEFAULT_MAX_PIXELS = 80_000_000


def max_pixels() -> int:
    raw = os.environ.get("CARDID_MAX_PIXELS", "")
    try:
        return int(float(raw)) if raw else DEFAULT_MAX_PIXELS
    except ValueError:
        from cardid.errors import CardIDError

        raise CardIDError(f"CARDID_MAX_PIXELS must be a number of pixels, got {raw!r}") from None


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer greyscale scaled to 8 bits (``convert`` would clip them to 0/255)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        arr = np.asarray(im, np.float64)
        top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return im


def load_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Load an image as an RGB uint8 array (H, W, 3): upright as its EXIF orientation says (phone
    photos are often stored rotated), 16-bit scaled rather than clipped, transparency composited
    the one defined way, and refused before decoding when it has more than :func:`max_pixels`."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    return _decode(path, str(path))


def decode_rgb(data: bytes, what: str = "upload") -> np.ndarray:
    """:func:`load_rgb` for bytes in memory (an upload, a websocket frame)."""
    import io as _io

    if not data:
        raise ImageError(f"{what} is empty (zero bytes)")
    return _decode(_io.BytesIO(data), what)


@functools.cache
def heif_support() -> bool:
    """Register pi-heif's HEIC/HEIF decoder with Pillow once; False when it is not installed."""
    try:
        from pi_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def _heif_brand(fp) -> bool:
    """Whether the file starts like a HEIC/HEIF image (``....ftyp<brand>``)."""
    try:
        pos = fp.tell() if hasattr(fp, "tell") else None
        if pos is None:
            with open(fp, "rb") as f:
                head = f.read(12)
        else:
            head = fp.read(12)
            fp.seek(pos)
    except OSError:
        return False
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def _decode(fp, what: str) -> np.ndarray:
    limit = max_pixels()
    if not heif_support() and _heif_brand(fp):
        raise ImageError(f"HEIC/HEIF photo: {what} needs pi-heif to be decoded: pip install 'cardid[heic]'")
    try:
        with pil_open(fp) as im:
            if im.width * im.height > limit:
                raise ImageError(
                    f"image too large: {what} ({im.width}×{im.height} px, limit {limit:,}; "
                    "set CARDID_MAX_PIXELS to raise it)"
                )
            im.load()
            upright = ImageOps.exif_transpose(im) or im
            rgb = composite_rgba(_to_8bit(upright))
    except ImageError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own guard, at open: far past any limit
        raise ImageError(f"image too large: {what} ({e})") from e
    except UnidentifiedImageError as e:  # its message is the file object's repr: say it plainly
        raise ImageError(
            f"corrupt or unsupported image: {what} (not an image format cardid can read: "
            f"{', '.join(PHOTO_EXTENSIONS)})"
        ) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"corrupt or unsupported image: {what} ({e})") from e
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ImageError(f"image too small or malformed: {what} (shape {arr.shape})")
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


def jpeg_data_url(rgb: np.ndarray, quality: int = 85) -> str:
    """An RGB image as a ``data:image/jpeg;base64,…`` URL (report pages, the server's renderings)."""
    import base64

    ok, buf = cv2.imencode(
        ".jpg",
        cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, int(quality)],
    )
    if not ok:
        raise ImageError("could not encode the image as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()
