"""Card records, the class index and the on-disk catalog.

A catalog directory holds ``card_metadata.json`` (one record per card id), ``class_index.json``
(stable id ↔ class index) and the images the records point at. One identity per card id, never
per file name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cardid.catalog.ids import scan_folder, split_card_id
from cardid.errors import CatalogError
from cardid.images import load_rgb
from cardid.io import read_json, write_json_atomic

METADATA_FILE = "card_metadata.json"
CLASS_INDEX_FILE = "class_index.json"


def _portable_path(old_root: Path, file: str, new_root: Path) -> str:
    """Relative to the catalog root when the file lives under it, absolute otherwise."""
    p = Path(file)
    p = (p if p.is_absolute() else old_root / p).resolve()
    try:
        return p.relative_to(new_root.resolve()).as_posix()
    except ValueError:
        return str(p)


class CardRecord(BaseModel):
    """One printing of one card. ``number`` is a string (``TG01`` and ``?`` exist)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1)
    name: str
    set_id: str
    set_name: str = ""
    series: str = ""
    number: str = ""
    rarity: str | None = None
    supertype: str | None = None
    subtypes: list[str] = Field(default_factory=list)
    artist: str | None = None
    release_date: str | None = None
    #: What the card prints beside its number: the set's printed total (``193`` in ``012/193``) and
    #: its code (``PAL``, from Scarlet & Violet on); read back off the card by `cardid.printing`.
    set_total: int | None = None
    set_code: str | None = None
    image_url: str | None = None
    #: Path of the scan, relative to the catalog root (or absolute when it lives elsewhere).
    image_file: str | None = None


def name_key(record: CardRecord | None) -> str:
    """A card's name, case- and space-folded: the printings of one card share it."""
    return " ".join(str(getattr(record, "name", "") or "").lower().split())


@dataclass(frozen=True)
class ClassIndex:
    """Stable mapping between card ids and class indices: ids sorted as strings.

    Sorted order is what ``torchvision.datasets.ImageFolder`` uses for class folders, so a folder
    layout and this index agree by construction.
    """

    idx_to_class: tuple[str, ...]

    @classmethod
    def from_ids(cls, ids: Iterable[str]) -> ClassIndex:
        ids = list(ids)
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise CatalogError(f"duplicate card ids in class index: {dup}")
        return cls(tuple(sorted(ids)))

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.idx_to_class)}

    @property
    def num_classes(self) -> int:
        return len(self.idx_to_class)

    def to_dict(self) -> dict:
        return {
            "class_to_idx": self.class_to_idx,
            "idx_to_class": {str(i): c for i, c in enumerate(self.idx_to_class)},
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "class_index.json") -> ClassIndex:
        try:
            c2i: dict[str, int] = d["class_to_idx"]
            n = int(d["num_classes"])
        except (KeyError, TypeError, ValueError) as e:
            raise CatalogError(f"malformed class index {source}: missing {e}") from e
        idx = sorted(c2i, key=c2i.__getitem__)
        if len(idx) != n or [c2i[c] for c in idx] != list(range(n)):
            raise CatalogError(f"malformed class index {source}: indices are not 0..{n - 1}")
        i2c = d.get("idx_to_class")
        if i2c is not None and any(i2c.get(str(i)) != c for i, c in enumerate(idx)):
            raise CatalogError(f"malformed class index {source}: idx_to_class disagrees with class_to_idx")
        return cls(tuple(idx))

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ClassIndex:
        return cls.from_dict(read_json(path, "class index"), str(path))


class Catalog:
    """A set of card records rooted at a directory (where relative image paths resolve)."""

    def __init__(self, root: str | Path, records: Iterable[CardRecord]):
        self.root = Path(root)
        recs = list(records)
        by_id: dict[str, CardRecord] = {}
        for r in recs:
            if r.id in by_id:
                raise CatalogError(f"duplicate card id {r.id!r} in catalog {self.root}")
            by_id[r.id] = r
        self._records = dict(sorted(by_id.items()))
        self.class_index = ClassIndex(tuple(self._records))

    # ----------------------------------------------------------------- container
    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[CardRecord]:
        return iter(self._records.values())

    def __contains__(self, card_id: object) -> bool:
        return card_id in self._records

    def __getitem__(self, card_id: str) -> CardRecord:
        try:
            return self._records[card_id]
        except KeyError:
            raise CatalogError(f"card id {card_id!r} is not in catalog {self.root}") from None

    @property
    def ids(self) -> list[str]:
        return list(self._records)

    @classmethod
    def merge(cls, catalogs: Sequence[Catalog]) -> Catalog:
        """One catalog over several (a DB's build catalog and the ones added to it): each card's
        scan stays where it is (absolute paths); a card in several is taken from the first."""
        recs: dict[str, CardRecord] = {}
        for cat in catalogs:
            for r in cat:
                if r.id not in recs:
                    image = str(cat.image_path(r.id).resolve()) if r.image_file else None
                    recs[r.id] = r.model_copy(update={"image_file": image})
        return cls(catalogs[0].root, recs.values())

    def subset(self, ids: Iterable[str]) -> Catalog:
        return Catalog(self.root, [self[i] for i in ids])

    # ----------------------------------------------------------------- images
    def image_path(self, card_id: str) -> Path:
        rec = self[card_id]
        if not rec.image_file:
            raise CatalogError(f"card {card_id!r} has no image_file (run `cardid catalog download`?)")
        p = Path(rec.image_file)
        return p if p.is_absolute() else self.root / p

    def image_dirs(self) -> list[Path]:
        """The catalog root and every folder its scans live in (inputs no output may replace)."""
        dirs = {self.root}
        for r in self:
            if r.image_file:
                dirs.add(self.image_path(r.id).parent)
        return sorted(dirs)

    def load_image(self, card_id: str) -> np.ndarray:
        """The clean scan as RGB uint8, transparency composited the one defined way."""
        return load_rgb(self.image_path(card_id))

    def missing_images(self) -> list[str]:
        return [r.id for r in self if not r.image_file or not self.image_path(r.id).is_file()]

    def require_images(self) -> None:
        missing = self.missing_images()
        if missing:
            first = self.image_path(missing[0]) if self[missing[0]].image_file else missing[0]
            raise CatalogError(
                f"{len(missing)} of {len(self)} card images are missing in {self.root}, e.g. {first}"
                " (run `cardid catalog download`?)"
            )

    # ----------------------------------------------------------------- disk
    def save(self, root: str | Path | None = None) -> Path:
        """Write metadata and class index (images are written by whoever created them)."""
        root = Path(root) if root is not None else self.root
        recs = []
        for r in self:
            d = r.model_dump()
            if d.get("image_file"):
                d["image_file"] = _portable_path(self.root, d["image_file"], root)
            recs.append(d)
        write_json_atomic(root / METADATA_FILE, recs)
        self.class_index.save(root / CLASS_INDEX_FILE)
        return root

    @classmethod
    def open(cls, path: str | Path) -> Catalog:
        """A catalog directory (or a dataset root), or a plain folder of ``<card_id>.<ext>`` scans
        (read-only folders, e.g. ``../shared/realdata/gallery``, are used as they are)."""
        path = Path(path)
        if (path / METADATA_FILE).is_file():
            return cls.load(path)
        scans = scan_folder(path)
        return cls(
            path,
            [
                CardRecord(id=c, name=c, set_id=split_card_id(c)[0], image_file=p.name)
                for c, p in scans.items()
            ],
        )

    @classmethod
    def load(cls, root: str | Path) -> Catalog:
        root = Path(root)
        if not root.is_dir():
            raise CatalogError(f"catalog directory not found: {root}")
        raw = read_json(root / METADATA_FILE, "card metadata")
        if not isinstance(raw, list):
            raise CatalogError(f"{root / METADATA_FILE}: expected a list of card records")
        recs = []
        for i, d in enumerate(raw):
            try:
                recs.append(CardRecord.model_validate(d))
            except ValidationError as e:
                msg = e.errors()[0]
                raise CatalogError(
                    f"{root / METADATA_FILE}: record {i} is invalid: {'.'.join(map(str, msg['loc']))} {msg['msg']}"
                ) from e
        cat = cls(root, recs)
        ci_path = root / CLASS_INDEX_FILE
        if ci_path.exists():
            stored = ClassIndex.load(ci_path)
            if stored != cat.class_index:
                raise CatalogError(f"{ci_path} does not match {METADATA_FILE} (different card ids)")
        return cat
