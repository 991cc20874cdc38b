"""Import the pokemontcg.io static-data format (``sets/en.json`` + ``cards/en/<set>.json``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from cardid.catalog.ids import card_file_stem
from cardid.catalog.records import CardRecord, Catalog
from cardid.errors import CatalogError
from cardid.io import read_json

log = logging.getLogger(__name__)


def _int_or_none(v) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _iso_date(d: str | None) -> str | None:
    return d.replace("/", "-") if d else None


def read_pokemontcg(
    data_dir: str | Path,
    sets: Sequence[str] | None = None,
    image_size: str = "large",
    lang: str = "en",
) -> list[CardRecord]:
    """Read card records; ``image_file`` is ``images/<id>.<ext>`` (fetched by ``catalog download``)."""
    data_dir = Path(data_dir)
    if image_size not in ("small", "large"):
        raise CatalogError(f"image_size must be 'small' or 'large', got {image_size!r}")
    raw_sets = read_json(data_dir / "sets" / f"{lang}.json", "pokemontcg sets file")
    if not isinstance(raw_sets, list):
        raise CatalogError(f"{data_dir / 'sets' / f'{lang}.json'}: expected a list of sets")
    set_info = {s["id"]: s for s in raw_sets if isinstance(s, dict) and "id" in s}
    wanted = list(sets) if sets else list(set_info)
    unknown = [s for s in wanted if s not in set_info]
    if unknown:
        raise CatalogError(f"unknown set id(s) {unknown} (not in {data_dir / 'sets' / f'{lang}.json'})")

    records: list[CardRecord] = []
    seen: dict[str, Path] = {}
    for set_id in wanted:
        info = set_info[set_id]
        path = data_dir / "cards" / lang / f"{set_id}.json"
        if not path.is_file():
            if sets:
                raise CatalogError(f"card file for set {set_id!r} not found: {path}")
            log.warning("set %s has no card file %s; skipped", set_id, path)
            continue
        cards = read_json(path, "pokemontcg card file")
        if not isinstance(cards, list):
            raise CatalogError(f"{path}: expected a list of cards")
        for c in cards:
            cid = c.get("id")
            if not cid:
                raise CatalogError(f"{path}: a card has no id")
            if cid in seen:
                raise CatalogError(f"duplicate card id {cid!r} in {path} (first seen in {seen[cid]})")
            seen[cid] = path
            url = (c.get("images") or {}).get(image_size) or (c.get("images") or {}).get("small")
            ext = PurePosixPath(urlparse(url).path).suffix.lower() if url else ""
            records.append(
                CardRecord(
                    id=cid,
                    name=c.get("name", ""),
                    set_id=set_id,
                    set_name=info.get("name", ""),
                    series=info.get("series", ""),
                    number=str(c.get("number", "")),
                    rarity=c.get("rarity"),
                    supertype=c.get("supertype"),
                    subtypes=list(c.get("subtypes") or []),
                    artist=c.get("artist"),
                    release_date=_iso_date(info.get("releaseDate")),
                    set_total=_int_or_none(info.get("printedTotal")),
                    set_code=info.get("ptcgoCode") or None,
                    image_url=url,
                    image_file=f"images/{card_file_stem(cid)}{ext or '.png'}" if url else None,
                )
            )
    if not records:
        raise CatalogError(f"no cards found in {data_dir} for sets {wanted}")
    return records


def import_pokemontcg(
    data_dir: str | Path,
    out: str | Path,
    sets: Sequence[str] | None = None,
    image_size: str = "large",
) -> Catalog:
    """``cardid catalog import-pokemontcg``: write ``card_metadata.json`` + ``class_index.json`` to ``out``."""
    cat = Catalog(out, read_pokemontcg(data_dir, sets, image_size))
    Path(out).mkdir(parents=True, exist_ok=True)
    cat.save()
    return cat
