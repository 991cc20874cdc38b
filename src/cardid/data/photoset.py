"""Labelled real photos: ``file,card_id[,notes]`` CSVs (the form of ``photos-dev.csv``), one loader.

Evaluation (``cardid eval photos``, ``eval retrieval --queries``), calibration (``index calibrate
--queries``) and training read labelled photos through :func:`load_photo_set`, so a bad list fails
the same way everywhere: one line naming what is wrong (unknown card ids, a photo listed twice, a
missing or unreadable photo), before any work starts.
"""

from __future__ import annotations

import random
from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path

from cardid.errors import CardIDError
from cardid.io import read_csv_rows


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    card_id: str
    notes: str = ""


@dataclass
class PhotoSet:
    """Photos, each with the id of the card it shows; ``source`` names where they came from."""

    photos: list[LabelledPhoto]
    source: str

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def paths(self) -> list[Path]:
        return [p.path for p in self.photos]

    @property
    def card_ids(self) -> list[str]:
        return [p.card_id for p in self.photos]

    def cards(self) -> list[str]:
        """Every card shown, sorted, once."""
        return sorted(set(self.card_ids))

    def of_cards(self, cards: Iterable[str]) -> PhotoSet:
        """The photos of these cards only."""
        keep = set(cards)
        return PhotoSet([p for p in self.photos if p.card_id in keep], self.source)

    def sample(self, limit: int | None, seed: int = 0) -> PhotoSet:
        """A fixed random sample of ``limit`` photos (in file order); all of them without a limit."""
        if not limit or limit >= len(self):
            return self
        chosen = random.Random(seed).sample(self.photos, limit)
        return PhotoSet(sorted(chosen, key=lambda p: str(p.path)), self.source)

    def rows(self) -> list[dict]:
        """The photos as ``{"path", "card_id", "notes"}`` dicts (what the photo evaluation reads)."""
        return [{"path": str(p.path), "card_id": p.card_id, "notes": p.notes} for p in self.photos]

    def require_cards(self, known: Container[str], where: str) -> None:
        """Refuse photos of cards ``known`` does not hold (a typo, another catalog): one line."""
        unknown = sorted({c for c in self.card_ids if c not in known})
        if unknown:
            n = sum(c in set(unknown) for c in self.card_ids)
            raise CardIDError(
                f"{self.source}: {n} photo(s) of {len(unknown)} card id(s) that {where} does not hold, "
                f"e.g. {', '.join(unknown[:5])}"
            )


def load_photo_set(
    csv_path: str | Path,
    known_cards: Container[str] | None = None,
    where: str = "the gallery",
    check_images: bool = True,
) -> PhotoSet:
    """Read a labelled photo list: columns ``file`` (relative to the CSV, or absolute) and
    ``card_id``, optionally ``notes`` (or ``kind``). Refused, each with one line: a row without a
    card id, a photo listed twice (by any spelling), a missing photo, one whose header does not read
    as an image (``check_images``), and card ids outside ``known_cards`` when given."""
    csv_path = Path(csv_path)
    rows = read_csv_rows(csv_path, {"file", "card_id"}, "labelled photo list", unique="file")
    photos, seen = [], {}
    for line, r in enumerate(rows, start=2):
        cid = (r.get("card_id") or "").strip()
        if not cid:
            raise CardIDError(f"{csv_path} line {line}: no card_id for {r['file']!r}")
        path = csv_path.parent / r["file"].strip()
        key = path.resolve()
        if key in seen:
            raise CardIDError(
                f"{csv_path}: the photo {path} is listed twice (lines {seen[key]} and {line}, by different names)"
            )
        seen[key] = line
        photos.append(LabelledPhoto(path, cid, (r.get("notes") or r.get("kind") or "").strip()))
    out = PhotoSet(photos, str(csv_path))
    missing = [p.path for p in photos if not p.path.is_file()]
    if missing:
        raise CardIDError(f"{csv_path}: {len(missing)} listed photo(s) are missing, e.g. {missing[0]}")
    if check_images:
        bad = [p.path for p in photos if not _reads_as_image(p.path)]
        if bad:
            raise CardIDError(
                f"{csv_path}: {len(bad)} listed photo(s) are not readable images, e.g. {bad[0]}"
            )
    if known_cards is not None:
        out.require_cards(known_cards, where)
    return out


def _reads_as_image(path: Path) -> bool:
    """Whether the file's header reads as an image (cheap: nothing is decoded)."""
    from PIL import UnidentifiedImageError

    from cardid.images import heif_support, pil_open

    heif_support()
    try:
        with pil_open(path) as im:
            return im.width > 0 and im.height > 0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False
