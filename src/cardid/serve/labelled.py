"""Every confirmed or corrected card is a labelled real photo: the card's rectified crop and its
card id, kept as a photo set in the form of ``photos-dev.csv`` (``file,card_id,notes``) that
calibration (``cardid index calibrate --queries``) and training (``data.val``) read.

When the server recognises a photo it cuts each card's crop at once (rectified, upright) and
keeps the crops on disk under a token (:class:`RecentPhotos`, ``labelled/pending/``): nothing of
the upload stays in memory, and a review queue of hundreds of photos, another tab or the live
camera never makes an earlier photo's cards unaddable. Old crops go by age and by a bound on
their number and bytes, oldest first. When the page adds a card naming a token and a card, that
crop is copied into ``labelled/crops/`` and linked to the collection's change
(:meth:`cardid.collection.Collection.labels`). ``labelled.csv`` follows the collection: a card
undone, removed or corrected takes its crop's label with it. Opt-out: ``cardid serve
--no-keep-photos``.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np

from cardid.errors import CardIDError

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16}$")


class RecentPhotos:
    """The cards' crops of the photos recognised lately, by token, on disk under ``root``."""

    def __init__(
        self,
        root: str | Path,
        max_photos: int = 5000,
        max_bytes: int = 1 << 30,
        max_age_s: float = 7 * 86400,
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_photos, self.max_bytes, self.max_age_s = max_photos, max_bytes, max_age_s
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, int]] = OrderedDict()  # token → (time, bytes)
        found = []
        for d in self.root.iterdir():  # what an earlier run kept: a reloaded page still adds it
            if d.is_dir() and _TOKEN.match(d.name):
                found.append((d.stat().st_mtime, d.name, sum(f.stat().st_size for f in d.iterdir())))
        for t, token, size in sorted(found):
            self._items[token] = (t, size)
        with self._lock:
            self._evict()

    def put(self, image: np.ndarray, cards: list[dict]) -> str | None:
        """Cut and keep every card's crop of ``image`` (as recognised); its token, or None when the
        photo has no card."""
        from cardid.detect.rectify import rectify
        from cardid.images import save_rgb

        if not cards:
            return None
        token = secrets.token_urlsafe(12)
        tmp = self.root / f".{token}.tmp"
        tmp.mkdir()
        for i, c in enumerate(cards):
            corners = c.get("corners")
            crop = image if corners is None else rectify(image, np.asarray(corners, np.float32))
            if c.get("upside_down"):
                crop = np.ascontiguousarray(crop[::-1, ::-1])
            save_rgb(tmp / f"{i}.jpg", crop, quality=92)
        size = sum(f.stat().st_size for f in tmp.iterdir())
        tmp.rename(self.root / token)
        with self._lock:
            self._items[token] = (time.time(), size)
            self._evict()
        return token

    def _evict(self) -> None:
        now = time.time()
        total = sum(s for _, s in self._items.values())
        while self._items:
            token, (t, size) = next(iter(self._items.items()))
            if len(self._items) <= self.max_photos and total <= self.max_bytes and now - t <= self.max_age_s:
                break
            self._items.popitem(last=False)
            total -= size
            shutil.rmtree(self.root / token, ignore_errors=True)

    def crop_file(self, token: str, index: int) -> Path:
        """The kept crop of card ``index`` of photo ``token``."""
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise CardIDError("that photo is no longer kept (or never was): its crop was not saved")
        with self._lock:
            known = token in self._items
        path = self.root / token / f"{int(index)}.jpg"
        if not known or not (self.root / token).is_dir():
            raise CardIDError("that photo is no longer kept (too old): its crop was not saved")
        if not path.is_file():
            n = len(list((self.root / token).glob("*.jpg")))
            raise CardIDError(f"the photo has {n} card(s), not a card {index}")
        return path

    def crop(self, token: str, index: int) -> np.ndarray:
        """Card ``index`` of photo ``token``, rectified and upright."""
        from cardid.images import load_rgb

        return load_rgb(self.crop_file(token, index))

    def __len__(self) -> int:
        return len(self._items)


class LabelledCrops:
    """``root/labelled.csv`` (``file,card_id,notes``) and ``root/crops/*.jpg``. The CSV is written
    from the collection's links (:meth:`sync`); lines it holds of no link (an older cardid's) stay."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.csv = self.root / "labelled.csv"
        self._lock = threading.Lock()

    def pending(self) -> RecentPhotos:
        return RecentPhotos(self.root / "pending")

    def keep(self, source: Path) -> str:
        """A kept crop (:meth:`RecentPhotos.crop_file`) copied under ``crops/``: its name in the set."""
        name = f"crops/{uuid.uuid4().hex}.jpg"
        (self.root / "crops").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.root / name)
        return name

    def discard(self, name: str) -> None:
        """A crop kept for a change that did not happen."""
        (self.root / name).unlink(missing_ok=True)

    def sync(self, collection) -> None:
        """Write ``labelled.csv`` from the collection: each linked crop under its row's card, while
        the change that added it stands and the row exists."""
        from cardid.io import write_bytes_atomic

        labels = collection.labels()
        if not labels and not self.csv.is_file():
            return  # nothing labelled yet: no file either
        linked = collection.labelled_files()
        with self._lock:
            kept = []
            if self.csv.is_file():
                with self.csv.open(encoding="utf-8", newline="") as f:
                    kept = [r for r in csv.DictReader(f) if r.get("file") and r["file"] not in linked]
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["file", "card_id", "notes"])
            for r in kept:
                w.writerow([r["file"], r.get("card_id", ""), r.get("notes", "")])
            for name, card_id, notes in labels:
                w.writerow([name, card_id, notes])
            data = buf.getvalue().encode("utf-8")
            if not self.csv.is_file() or self.csv.read_bytes() != data:
                write_bytes_atomic(self.csv, data)

    def count(self) -> int:
        if not self.csv.is_file():
            return 0
        with self.csv.open(encoding="utf-8", newline="") as f:
            return sum(1 for _ in csv.DictReader(f))


def keep_confirmed(events: list[dict], token: str | None, cards: list[dict]) -> None:
    """A card confirmed in a live frame names that frame (kept as ``token``) and its place in it,
    so adding it to the collection saves its crop as an upload's would (``photo``, ``index``)."""
    if token is None:
        return
    for ev in events:
        # the track's last sighting is this frame's card record itself (the same object)
        index = next((i for i, c in enumerate(cards) if c is ev.get("info")), None)
        if index is not None:
            ev["photo"], ev["index"] = token, index
