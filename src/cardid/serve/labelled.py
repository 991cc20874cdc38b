"""Every confirmed or corrected card is a labelled real photo: the card's rectified crop and its
card id, kept as a photo set in the form of ``photos-dev.csv`` (``file,card_id,notes``) that
calibration (``cardid index calibrate --queries``) and training (``data.val``) read.

The server keeps the last photos it recognised (a bounded cache, keyed by a token in the answer);
when the page adds a card to the collection naming that photo and card, the crop is cut from the
photo at the card's corners, turned upright, and written with its label. Opt-out: ``cardid serve
--no-keep-photos``.
"""

from __future__ import annotations

import csv
import io
import secrets
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np

from cardid.errors import CardIDError


class RecentPhotos:
    """The last ``size`` photos recognised, by token: the upload as it came (compressed, a few MB
    at most; decoded again only when one of its cards is added) and its cards' corners."""

    def __init__(self, size: int = 32):
        self.size = size
        self._items: OrderedDict[str, tuple[bytes, list]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, data: bytes, cards: list[dict]) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._items[token] = (data, [(c.get("corners"), bool(c.get("upside_down"))) for c in cards])
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return token

    def crop(self, token: str, index: int) -> np.ndarray:
        """Card ``index`` of photo ``token``, rectified and upright (the whole photo for a crop)."""
        from cardid.detect.rectify import rectify
        from cardid.images import decode_rgb

        with self._lock:
            item = self._items.get(token)
        if item is None:
            raise CardIDError("that photo is no longer kept (too old): its crop was not saved")
        data, cards = item
        if not 0 <= index < len(cards):
            raise CardIDError(f"the photo has {len(cards)} card(s), not a card {index}")
        corners, upside_down = cards[index]
        image = decode_rgb(data, "kept photo")  # as recognised: the same EXIF turn, the same corners
        crop = image if corners is None else rectify(image, np.asarray(corners, np.float32))
        return np.ascontiguousarray(crop[::-1, ::-1]) if upside_down else crop


class LabelledCrops:
    """``root/labelled.csv`` (``file,card_id,notes``) and ``root/crops/*.jpg``, appended safely."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.csv = self.root / "labelled.csv"
        self._lock = threading.Lock()

    def save(self, crop: np.ndarray, card_id: str, notes: str = "") -> Path:
        from cardid.images import save_rgb

        name = f"crops/{uuid.uuid4().hex}.jpg"
        save_rgb(self.root / name, crop, quality=92)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        with self._lock:
            if not self.csv.exists() or self.csv.stat().st_size == 0:
                w.writerow(["file", "card_id", "notes"])
            w.writerow([name, card_id, notes])
            with self.csv.open("a", encoding="utf-8") as f:
                f.write(buf.getvalue())
                f.flush()
        return self.root / name

    def count(self) -> int:
        if not self.csv.is_file():
            return 0
        with self.csv.open(encoding="utf-8") as f:
            return max(0, sum(1 for _ in f) - 1)


def keep_confirmed(events: list[dict], token: str, cards: list[dict]) -> None:
    """A card confirmed in a live frame names that frame (kept as ``token``) and its place in it,
    so adding it to the collection saves its crop as an upload's would (``photo``, ``index``)."""
    for ev in events:
        # the track's last sighting is this frame's card record itself (the same object)
        index = next((i for i, c in enumerate(cards) if c is ev.get("info")), None)
        if index is not None:
            ev["photo"], ev["index"] = token, index
