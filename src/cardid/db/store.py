"""The reference DB: every gallery scan embedded by the deployed artefact, searchable, self-describing.

A DB directory holds ``embeddings.npy`` (float32 [N, D]), ``index.usearch`` (cosine; f32/f16/i8),
``card_index.json`` (row → card id), ``card_metadata.json``, ``features/`` (keypoints, strips and
hashes for verification) and ``db.json`` (which model built it, its preprocessing contract, dim,
count, dtype, calibrated thresholds). Loading checks that all of these agree; a query model whose
weights or preprocessing differ from the builder's is refused. Every write builds a new directory
under a temporary name and renames it into place, so a failed build or add leaves the old DB intact.
"""

from __future__ import annotations

import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cardid.catalog.records import CardRecord, Catalog, name_key
from cardid.db.features import GalleryFeatures
from cardid.db.verify import VerifyConfig
from cardid.embed import Embedder
from cardid.errors import CardIDError, DBError
from cardid.io import (
    inside,
    read_json,
    recover_dir,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
)
from cardid.preprocess import Preprocess
from cardid.search import topk_cosine

DB_FORMAT = "cardid-db/1"
DTYPES = ("f32", "f16", "i8")
EMBEDDINGS, INDEX, IDS, METADATA, META, FEATURES = (
    "embeddings.npy",
    "index.usearch",
    "card_index.json",
    "card_metadata.json",
    "db.json",
    "features",
)
#: the query adapter learned from real photo ↔ scan pairs (:mod:`cardid.embed.adapter`), when fitted
ADAPTER = "adapter.npy"


@dataclass(frozen=True)
class Hit:
    row: int
    card_id: str
    similarity: float
    record: CardRecord


def usearch_index():
    # onnxruntime 1.32 segfaults when imported *after* usearch 2.26's native module (seen on
    # Linux x86-64; the other order is fine), and ONNX embedders load lazily: import it first.
    with contextlib.suppress(ImportError):
        import onnxruntime  # noqa: F401
    try:
        from usearch.index import Index
    except ImportError as e:  # pragma: no cover - usearch is a core dependency
        raise CardIDError("the reference DB needs `usearch` (pip install usearch)") from e
    return Index


class CardDB:
    """A loaded reference DB. Build with :meth:`build`, open with :meth:`load`."""

    def __init__(
        self,
        root: Path,
        meta: dict[str, Any],
        embeddings: np.ndarray,
        ids: list[str],
        records: dict[str, CardRecord],
        index,
        features: GalleryFeatures | None,
    ):
        self.root, self.meta, self.embeddings, self.ids = root, meta, embeddings, ids
        self.records, self.index, self.features = records, index, features
        self.row_of = {c: i for i, c in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @functools.cached_property
    def _rows_by_name(self) -> dict[str, list[int]]:
        rows: dict[str, list[int]] = {}
        for i, c in enumerate(self.ids):
            rows.setdefault(name_key(self.records.get(c)), []).append(i)
        return rows

    def printings_of(self, row: int) -> list[int]:
        """Every row with the same card name as ``row`` (its printings), ``row`` included."""
        name = name_key(self.records.get(self.ids[row]))
        return self._rows_by_name.get(name, [row]) if name else [row]

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess.from_dict(self.meta["preprocess"])

    @property
    def verify_config(self) -> VerifyConfig | None:
        v = self.meta.get("verification")
        return VerifyConfig(**v) if v else None

    @property
    def calibration(self) -> dict | None:
        return self.meta.get("calibration")

    # ------------------------------------------------------------------ build / add
    def writable_index(self):
        """A writable in-memory copy of the index (the loaded one may be a view of the file)."""
        Index = usearch_index()
        return Index.restore(str(self.root / INDEX), view=False)

    def catalog_sources(self) -> list[Path]:
        """Where the scans of the DB's cards are: the catalog it was built from and every one added
        since. Each is looked for relative to the DB folder first (a moved or copied tree), then at
        its absolute path (a DB moved alone); a DB from before this was recorded names one catalog,
        relative to the folder it was built from."""
        refs = self.meta.get("catalogs") or (
            [{"path": self.meta["catalog"]}] if self.meta.get("catalog") else []
        )
        out = []
        for ref in refs:
            tries = [self.root / ref["relative"]] if ref.get("relative") else []
            tries.append(Path(ref["path"]))
            out.append(next((p for p in tries if p.exists()), tries[-1]))
        return out

    def gallery(self, catalog: str | Path | None = None) -> Catalog:
        """The gallery scans of the DB's cards: ``catalog`` when given, else every catalog the DB
        records (the one it was built from and each one added), as one catalog."""
        if catalog is not None:
            return Catalog.open(catalog)
        sources = self.catalog_sources()
        if not sources:
            raise DBError(f"reference DB {self.root} does not record its catalog: give --catalog")
        cats = [Catalog.open(p) for p in sources]
        return cats[0] if len(cats) == 1 else Catalog.merge(cats)

    @functools.cached_property
    def adapter(self):
        """The query adapter fitted for this DB's model on labelled real photos
        (:class:`cardid.embed.adapter.QueryAdapter`), or None."""
        from cardid.embed.adapter import QueryAdapter

        info = self.meta.get("adapter")
        if not info:
            return None
        m = self.read_array(ADAPTER)
        if m.shape != (self.dim, self.dim) or not np.isfinite(m).all():
            raise DBError(
                f"reference DB {self.root}: {ADAPTER} is {m.shape}, not a finite ({self.dim}, {self.dim})"
            )
        return QueryAdapter(m.astype(np.float64), float(info["lam"]), int(info["pairs"]))

    def read_array(self, name: str) -> np.ndarray:
        """One of the DB's stored arrays (``adapter.npy``, ``backs.npy``); unreadable is an error naming it."""
        try:
            return np.load(self.root / name)
        except (OSError, ValueError) as e:
            raise DBError(f"reference DB {self.root}: {name} is unreadable ({e})") from e

    def save_adapter(self, adapter, **info: Any) -> None:
        """Store a query adapter (its matrix hashed with the DB's files; ``info``: what it was fitted
        on); None removes it."""
        import io

        files = dict(self.meta.get("files", {}))
        if adapter is None:
            files.pop(ADAPTER, None)
            self.__dict__.pop("adapter", None)
            self.save_meta(adapter=None, files=files)
            return
        buf = io.BytesIO()
        np.save(buf, np.asarray(adapter.matrix, np.float32))
        write_bytes_atomic(self.root / ADAPTER, buf.getvalue())
        files[ADAPTER] = sha256_file(self.root / ADAPTER)
        self.__dict__.pop("adapter", None)
        self.save_meta(adapter={"lam": adapter.lam, "pairs": adapter.pairs, **info}, files=files)

    def save_meta(self, **updates: Any) -> None:
        """Update fields of ``db.json`` (e.g. calibration) atomically."""
        self.meta.update(updates)
        write_json_atomic(self.root / META, self.meta)

    # ------------------------------------------------------------------ load / checks
    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None, verify_files: bool = True) -> CardDB:
        """Open a DB directory, checking that its files agree with each other (and with
        ``embedder`` when given). ``verify_files`` also checks the recorded file hashes."""
        root = recover_dir(path)  # a replace killed half-way is undone first
        if not root.is_dir():
            raise DBError(f"reference DB not found: {root}")
        for name in (META, EMBEDDINGS, INDEX, IDS, METADATA):
            if not (root / name).is_file():
                raise DBError(f"reference DB {root} is incomplete: {name} is missing")
        try:
            meta = read_json(root / META, "DB description")
        except CardIDError as e:
            raise DBError(f"reference DB {root}: {e}") from e
        if not isinstance(meta, dict) or meta.get("format") != DB_FORMAT:
            raise DBError(f"{root / META}: not a {DB_FORMAT} description")
        _check_meta(root, meta)
        if verify_files:
            files = meta.get("files", {})
            paths = {name: inside(root, name, f"{root / META}: file", DBError) for name in files}
            for name, path in paths.items():
                if not path.is_file():
                    raise DBError(f"reference DB {root} is incomplete: {name} is missing")
            # hashlib releases the GIL: the big arrays (~1 GB at 19k cards) hash side by side
            with ThreadPoolExecutor(min(4, max(1, len(paths)))) as pool:
                digests = dict(zip(paths, pool.map(sha256_file, paths.values()), strict=True))
            for name, digest in files.items():
                if digests[name] != digest:
                    raise DBError(f"reference DB {root}: {name} was modified or truncated (hash mismatch)")
        try:
            emb = np.load(root / EMBEDDINGS)
        except (OSError, ValueError) as e:
            raise DBError(f"reference DB {root}: {EMBEDDINGS} is unreadable ({e})") from e
        ids = read_json(root / IDS, "card index")
        raw = read_json(root / METADATA, "card metadata")
        count, dim = int(meta["count"]), int(meta["dim"])
        if emb.ndim != 2 or emb.shape != (count, dim) or emb.dtype != np.float32:
            raise DBError(
                f"reference DB {root}: embeddings {emb.shape} {emb.dtype} != ({count}, {dim}) float32"
            )
        if not isinstance(ids, list) or len(ids) != count:
            raise DBError(f"reference DB {root}: {IDS} has {len(ids)} ids for {count} rows")
        if len(set(ids)) != len(ids):
            dup = sorted({c for c in ids if ids.count(c) > 1})
            raise DBError(f"reference DB {root}: duplicate card ids in {IDS}, e.g. {dup[:3]}")
        records = {}
        for d in raw:
            rec = CardRecord.model_validate(d)
            records[rec.id] = rec
        missing = [c for c in ids if c not in records]
        if missing:
            raise DBError(f"reference DB {root}: {len(missing)} card(s) without metadata, e.g. {missing[:3]}")
        try:
            index = usearch_index().restore(str(root / INDEX), view=True)
        except Exception as e:  # usearch raises RuntimeError/ValueError on a bad file
            raise DBError(f"reference DB {root}: {INDEX} is unreadable ({e})") from e
        if index is None or len(index) != count or index.ndim != dim:
            size = None if index is None else (len(index), index.ndim)
            raise DBError(f"reference DB {root}: index holds {size}, expected ({count}, {dim})")
        feats = None
        if meta.get("verification"):
            try:
                cfg = VerifyConfig(**meta["verification"])
            except TypeError as e:
                raise DBError(f"{root / META}: 'verification' has unknown or missing fields ({e})") from e
            feats = GalleryFeatures.load(root / FEATURES, cfg, count)
        db = cls(root, meta, emb, ids, records, index, feats)
        if embedder is not None:
            db.check_embedder(embedder)
        return db

    def check_embedder(self, embedder: Embedder) -> None:
        """Refuse a query model other than the one that built the DB."""
        built = self.meta["model"]
        if embedder.identity != built["identity"]:
            raise DBError(
                f"the DB at {self.root} was built by model {built['identity']} "
                f"({built.get('name') or built.get('path') or '?'}), not by {embedder.identity} "
                f"({embedder.info.get('name') or embedder.info.get('path') or '?'}); "
                "rebuild it with `cardid index build` for this model"
            )
        if embedder.dim != self.dim:
            raise DBError(f"embedding dim {embedder.dim} != DB dim {self.dim}")
        self.preprocess.check_same(embedder.preprocess, "DB build vs query model")

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, k: int = 5, exact: bool = True) -> list[list[Hit]]:
        """Top-``k`` cards per query embedding (rows L2-normalised), most similar first.

        ``exact`` ranks by float32 dot products over all rows; otherwise the usearch HNSW
        graph is used (approximate, in the index's dtype)."""
        q = np.atleast_2d(np.asarray(queries, np.float32))
        if q.shape[1] != self.dim:
            raise DBError(f"query dim {q.shape[1]} != DB dim {self.dim}")
        k = min(k, len(self))
        if exact:
            sims, rows = topk_cosine(q, self.embeddings, k)
        else:
            m = self.index.search(q, k)
            rows = np.asarray(m.keys, np.int64).reshape(len(q), -1)
            sims = 1.0 - np.asarray(m.distances, np.float32).reshape(len(q), -1)
        return [
            [
                Hit(int(r), self.ids[r], float(s), self.records[self.ids[r]])
                for r, s in zip(rr, ss, strict=True)
            ]
            for rr, ss in zip(rows, sims, strict=True)
        ]


def _check_meta(root: Path, meta: dict) -> None:
    """``db.json`` has the fields and types the loader relies on (else one clear error, not a
    ``KeyError`` deep inside)."""
    want = {"count": int, "dim": int, "model": dict, "preprocess": dict, "files": dict}
    for key, typ in want.items():
        if key == "files" and key not in meta:  # DBs written before file hashes
            continue
        if not isinstance(meta.get(key), typ) or isinstance(meta.get(key), bool):
            raise DBError(f"{root / META}: field {key!r} must be a {typ.__name__}, got {meta.get(key)!r:.60}")
    if not isinstance(meta["model"].get("identity"), str):
        raise DBError(f"{root / META}: model.identity is missing")
    files = meta.get("files", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise DBError(f"{root / META}: 'files' must map file names to SHA-256 strings")
    for key in ("verification", "calibration"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise DBError(f"{root / META}: field {key!r} must be an object or null")
