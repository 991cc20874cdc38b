"""Writing a reference DB: embed a catalog's scans, compute their verification features, index
them, and write every file under a temporary name, hashed in ``db.json``, renamed into place
(:mod:`cardid.db.store` reads it back and checks it)."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cardid import __version__
from cardid.catalog.records import Catalog
from cardid.db.features import GalleryFeatures
from cardid.db.store import (
    DB_FORMAT,
    DTYPES,
    EMBEDDINGS,
    FEATURES,
    IDS,
    INDEX,
    META,
    METADATA,
    CardDB,
    usearch_index,
)
from cardid.db.verify import VerifyConfig
from cardid.embed.base import Embedder
from cardid.errors import DBError
from cardid.io import atomic_dir, check_output, is_cardid_dir, sha256_file, write_json_atomic, write_marker


def build_index(emb: np.ndarray, dtype: str, start: int = 0, index=None):
    Index = usearch_index()
    if index is None:
        index = Index(ndim=emb.shape[1], metric="cos", dtype=dtype)
    if len(emb):
        index.add(np.arange(start, start + len(emb), dtype=np.uint64), emb, threads=0)
    return index


def embed_catalog(
    embedder: Embedder, catalog: Catalog, ids: Sequence[str], workers: int, progress: Callable | None
) -> np.ndarray:
    emb = embedder.embed(list(ids), load=catalog.load_image, workers=workers, progress=progress)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1)
    if not np.all(np.isfinite(emb)) or np.any(np.abs(norms - 1) > 1e-3):
        raise DBError("the embedder returned non-finite or non-unit vectors; refusing to build a DB")
    return emb


def build_db(
    embedder: Embedder,
    catalog: Catalog,
    out: str | Path,
    dtype: str = "f32",
    verify: VerifyConfig | None = VerifyConfig(),
    overwrite: bool = False,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
    skip_missing: bool = False,
) -> CardDB:
    """Embed every scan of ``catalog`` with ``embedder`` and write a DB directory at ``out``.

    ``progress`` is advanced once per image embedded and once per image whose verification
    features are computed (2 × N in all when ``verify`` is set). A card without a scan is an
    error, unless ``skip_missing``: then it is left out and listed in ``db.json``
    (``skipped_missing``), so a later ``add`` can bring it in."""
    if dtype not in DTYPES:
        raise DBError(f"unknown index dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if len(catalog) == 0:
        raise DBError("the catalog is empty; nothing to index")
    skipped = catalog.missing_images() if skip_missing else []
    if skipped:
        if len(skipped) == len(catalog):
            raise DBError(f"none of the {len(catalog)} cards of {catalog.root} has a scan; nothing to index")
        gone = set(skipped)
        catalog = catalog.subset([c for c in catalog.ids if c not in gone])
    catalog.require_images()
    protect = catalog.image_dirs()
    check_output(out, overwrite, "db", protect)  # before the long part, not after it
    ids = list(catalog.ids)
    emb = embed_catalog(embedder, catalog, ids, workers, progress)
    feats = GalleryFeatures.compute(ids, verify, progress, catalog.load_image, workers) if verify else None
    meta = {
        "format": DB_FORMAT,
        "model": dict(embedder.info, identity=embedder.identity),
        "preprocess": embedder.preprocess.to_dict(),
        "preprocess_fingerprint": embedder.preprocess.fingerprint(),
        "dim": int(embedder.dim),
        "count": len(ids),
        "dtype": dtype,
        "metric": "cos",
        "verification": verify.to_dict() if verify else None,
        "calibration": None,
        "catalog": str(catalog.root.resolve()),
        "catalogs": [catalog_ref(catalog.root, out)],
        "skipped_missing": skipped,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cardid_version": __version__,
    }
    with atomic_dir(out, overwrite=overwrite, kind="db", protect=protect) as tmp:
        write_db(tmp, meta, emb, ids, [catalog[c] for c in ids], build_index(emb, dtype), feats)
    return CardDB.load(out)


def write_db(root: Path, meta, emb, ids, records, index, feats: GalleryFeatures | None) -> None:
    np.save(root / EMBEDDINGS, emb)
    index.save(str(root / INDEX))
    write_json_atomic(root / IDS, ids)
    recs = []
    for r in records:
        d = r.model_dump(exclude_none=True)
        d.pop("image_file", None)  # the DB does not depend on where the scans were
        recs.append(d)
    write_json_atomic(root / METADATA, recs)
    if feats is not None:
        feats.save(root / FEATURES)
    # every file a decision depends on is hashed: metadata (a renamed card) and the
    # verification features (zeroed descriptors) included
    names = [EMBEDDINGS, INDEX, IDS, METADATA]
    if feats is not None:
        names += [f"{FEATURES}/{n}" for n in feats.files()]
    meta = dict(meta, count=len(ids), files={n: sha256_file(root / n) for n in names})
    write_json_atomic(root / META, meta)


def add_cards(
    db: CardDB,
    embedder: Embedder,
    catalog: Catalog,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> CardDB:
    """Append the cards of ``catalog`` (e.g. a new set) without re-embedding the others.

    Cards already in the DB are an error (nothing is written). The new DB replaces the old one
    only once it is complete."""
    db.check_embedder(embedder)
    new = list(catalog.ids)
    clash = sorted(set(new) & set(db.ids))
    if clash:
        raise DBError(f"{len(clash)} card(s) already in the DB, e.g. {clash[:3]}; nothing added")
    if not new:
        raise DBError("no cards to add")
    catalog.require_images()
    emb = embed_catalog(embedder, catalog, new, workers, progress)
    feats = db.features
    cfg = db.verify_config
    if cfg is not None:
        added = GalleryFeatures.compute(new, cfg, progress, catalog.load_image, workers)
        feats = feats.materialised().concat(added)
    index = build_index(emb, db.meta["dtype"], start=len(db), index=db.writable_index())
    all_emb = np.concatenate([db.embeddings, emb])
    records = [db.records[c] for c in db.ids] + [catalog[c] for c in new]
    meta = dict(db.meta, modified=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    refs = db.meta.get("catalogs") or [catalog_ref(p, db.root) for p in db.catalog_sources()]
    ref = catalog_ref(catalog.root, db.root)  # where the added cards' scans are (thumbnails)
    meta["catalogs"] = [*(r for r in refs if r.get("path") != ref["path"]), ref]
    added = set(new)
    meta["skipped_missing"] = [c for c in db.meta.get("skipped_missing") or [] if c not in added]
    if not is_cardid_dir(db.root):  # a DB from before markers: it loaded, so it is ours
        write_marker(db.root, "db")
    with atomic_dir(db.root, overwrite=True, kind="db", protect=catalog.image_dirs()) as tmp:
        write_db(tmp, meta, all_emb, db.ids + new, records, index, feats)
    return CardDB.load(db.root)


def catalog_ref(catalog_root: Path, db_root: str | Path) -> dict[str, str]:
    """How ``db.json`` names a catalog: absolute, and relative to the DB folder."""
    path = Path(catalog_root).resolve()
    return {"path": str(path), "relative": os.path.relpath(path, Path(db_root).resolve())}
