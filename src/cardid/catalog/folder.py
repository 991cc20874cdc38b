"""A catalog from a folder of scans named ``<card_id>.<ext>`` (e.g. ``../shared/realdata/gallery``)."""

from __future__ import annotations

from pathlib import Path

from cardid.catalog.ids import scan_folder, split_card_id
from cardid.catalog.pokemontcg import read_pokemontcg
from cardid.catalog.records import CardRecord, Catalog
from cardid.errors import CardIDError, CatalogError
from cardid.io import read_csv_rows


def _csv_metadata(path: Path) -> dict[str, dict]:
    try:
        rows = read_csv_rows(path, {"card_id"}, "metadata CSV", unique="card_id")
    except CardIDError as e:
        raise CatalogError(str(e)) from e
    return {r["card_id"].strip(): r for r in rows}


def catalog_from_folder(
    folder: str | Path,
    out: str | Path | None = None,
    metadata_csv: str | Path | None = None,
    pokemontcg_dir: str | Path | None = None,
) -> Catalog:
    """Build (and save to ``out``, default ``folder``) a catalog whose images stay where they are.

    Names, sets and numbers come from a CSV with a ``card_id`` column (``gallery.csv``), or from
    pokemontcg.io data, or else from the id itself (``sv2-160`` → set ``sv2``, number ``160``).
    """
    scans = scan_folder(folder)
    out = Path(out) if out is not None else Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    by_id: dict[str, dict] = {}
    if pokemontcg_dir:
        set_ids = sorted({split_card_id(c)[0] for c in scans})
        known = {
            r.id: r.model_dump()
            for r in read_pokemontcg(pokemontcg_dir, _known_sets(pokemontcg_dir, set_ids))
        }
        by_id.update(known)
    if metadata_csv:
        for cid, row in _csv_metadata(Path(metadata_csv)).items():
            by_id.setdefault(cid, {}).update(
                {k: v for k, v in row.items() if k in CardRecord.model_fields and v}
            )
    records = []
    for cid, path in scans.items():
        set_id, number = split_card_id(cid)
        d = {"name": cid, "set_id": set_id, "number": number, **by_id.get(cid, {})}
        d.update(id=cid, image_file=str(path.resolve()))
        records.append(CardRecord.model_validate(d))
    cat = Catalog(out, records)
    cat.save()
    return cat


def _known_sets(pokemontcg_dir: str | Path, set_ids: list[str]) -> list[str]:
    from cardid.io import read_json

    sets = {s["id"] for s in read_json(Path(pokemontcg_dir) / "sets" / "en.json", "pokemontcg sets file")}
    return [s for s in set_ids if s in sets]
