"""Card ids and file names: the leaf every catalog module reads (no catalog type in it).

A card id is what pokemontcg.io calls a card (``sv2-160``, ``ex10-?``); its file stem is the id made
safe for any file system, and a folder of ``<card_id>.<ext>`` scans maps ids to files.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

from cardid.errors import CatalogError
from cardid.images import IMAGE_EXTENSIONS


def card_file_stem(card_id: str) -> str:
    """Filesystem-safe stem for a card id (``ex10-?`` → ``ex10-%3F``); reversible by
    :func:`card_id_from_stem`. Never a separator, never ``.``/``..`` nor hidden: a leading dot
    is escaped too (``..`` → ``%2E.``)."""
    stem = quote(card_id, safe="-_.")
    return "%2E" + stem[1:] if stem.startswith(".") else stem


def card_id_from_stem(stem: str) -> str:
    return unquote(stem)


def split_card_id(card_id: str) -> tuple[str, str]:
    """``sv2-160`` → (``sv2``, ``160``); an id without a dash is its own set."""
    set_id, _, number = card_id.rpartition("-")
    return (set_id, number) if set_id else (card_id, "")


def scan_folder(folder: str | Path) -> dict[str, Path]:
    """Map card id → scan path. Two files with one id (``a.jpg`` and ``a.png``) are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CatalogError(f"scan folder not found: {folder}")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_EXTENSIONS or not p.is_file():
            continue
        cid = card_id_from_stem(p.stem)
        if cid in found:
            raise CatalogError(f"duplicate card id {cid!r}: {found[cid]} and {p}")
        found[cid] = p
    if not found:
        raise CatalogError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return found
