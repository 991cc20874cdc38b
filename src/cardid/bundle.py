"""A deployable bundle: everything a scanner needs, in one folder, every file hashed.

``bundle.json`` names the embedding model (ONNX), the reference DB, the card finder (an ONNX
YOLO-OBB or ``classical``) and its confidence, the decision settings the evaluation used, the
evaluation's summary and the recipe that built it; ``files`` holds the SHA-256 of every other
file. :func:`load_bundle` refuses a bundle whose files are missing, altered or added, so what is
served is what was measured. ``cardid serve BUNDLE``, ``cardid recognize --bundle BUNDLE`` and
``cardid export --bundle BUNDLE`` take one. Torch-free: part of the runtime install.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardid import __version__
from cardid.errors import CardIDError
from cardid.io import atomic_dir, inside, read_json, sha256_file, write_json_atomic

BUNDLE_JSON = "bundle.json"
BUNDLE_FORMAT = "cardid-bundle/1"


class BundleError(CardIDError):
    """A bundle that cannot be trusted: the message names the file."""


@dataclass(frozen=True)
class Bundle:
    root: Path
    meta: dict[str, Any]

    @property
    def model(self) -> Path:
        return self.root / self.meta["model"]

    @property
    def db(self) -> Path:
        return self.root / self.meta["db"]

    @property
    def detector(self) -> str:
        d = self.meta.get("detector") or "classical"
        return d if d == "classical" else str(self.root / d)

    @property
    def conf(self) -> float:
        return float(self.meta.get("detector_conf", 0.25))

    @property
    def source(self) -> Path | None:
        """The trained model the ONNX was exported from (for other export targets), if carried."""
        s = self.meta.get("source")
        return self.root / s if s else None

    def match_config(self, **overrides: Any):
        """The decision settings the bundle was evaluated with (``overrides`` on top)."""
        from cardid.decision.match import MatchConfig

        return MatchConfig(**{**(self.meta.get("match") or {}), **overrides})

    def gallery(self):
        """The gallery thumbnails it carries (a :class:`~cardid.catalog.Catalog` over
        ``gallery/``), or None for a bundle built before it carried them."""
        from cardid.catalog.records import CardRecord, Catalog

        index = self.meta.get("gallery")
        if not index:
            return None
        recs = [CardRecord(id=cid, name=cid, set_id="", image_file=f) for cid, f in index.items()]
        return Catalog(self.root / GALLERY, recs)

    def recognizer(self, detector: bool = True, **match: Any):
        """A :class:`~cardid.recognize.Recognizer` as the bundle says: its model, DB, finder and
        decision settings (``detector=False``: each image is one card crop)."""
        from cardid.recognize import Recognizer, make_detector

        det = make_detector(self.detector, self.conf) if detector else None
        return Recognizer.open(self.model, self.db, det, self.match_config(**match))


GALLERY = "gallery"
#: a carried gallery scan: tall enough to tell printings apart side by side, small enough for 18k
THUMB_HEIGHT = 320


def _files(root: Path) -> list[str]:
    """Every file under ``root`` but ``bundle.json`` and the top marker; a link is refused (a
    bundle holds its files, it never points elsewhere)."""
    import os

    from cardid.io import MARKER

    out = []
    for d, dirs, files in os.walk(root, followlinks=False):
        here = Path(d)
        for name in [*dirs, *files]:
            if (here / name).is_symlink():
                raise BundleError(
                    f"bundle {root}: {(here / name).relative_to(root)} is a link; nothing was loaded"
                )
        for name in files:
            rel = (here / name).relative_to(root).as_posix()
            if rel not in (BUNDLE_JSON, MARKER):
                out.append(rel)
    return sorted(out)


def _write_gallery(db, out: Path) -> dict[str, str]:
    """Thumbnails of the DB's gallery scans under ``out`` (the scanner shows them to pick a
    printing from): card id → file name; cards whose scan is not found are left out."""
    import cv2

    from cardid.images import save_rgb
    from cardid.progress import progress

    try:
        cat = db.gallery()
    except CardIDError:
        return {}
    out.mkdir()
    index = {}
    ids = list(db.ids)
    with progress(len(ids), "gallery thumbnails") as advance:
        for k, cid in enumerate(ids):
            advance(1)
            try:
                img = cat.load_image(cid) if cid in cat else None
            except (CardIDError, OSError):
                img = None
            if img is None:
                continue
            scale = THUMB_HEIGHT / img.shape[0]
            if scale < 1:
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            name = f"{k:06d}.jpg"
            save_rgb(out / name, img, quality=85)
            index[cid] = name
    return index


def bundle_or_parts(bundle, model, db, flag: str = "--bundle") -> None:
    """A command takes a bundle or a model and a DB, not both (a bundle names its own): one line."""
    if bundle is None and (model is None or db is None):
        raise BundleError(f"give {flag}, or --model and --db")
    if bundle is not None and (model is not None or db is not None):
        raise BundleError(f"a {flag} names its own model and DB: give the bundle, or --model and --db")


def _copy_tree(src: Path, dst: Path) -> None:
    """A copy, never a link (a bundle is handed on: editing it must not edit what built it),
    without cardid's hidden markers."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*"))


def write_bundle(
    out: str | Path,
    model: str | Path,
    db: str | Path,
    detector: str | Path = "classical",
    detector_conf: float = 0.25,
    match: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
    notices: str | Path | None = None,
    source: str | Path | None = None,
    recipe: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Assemble a bundle at ``out`` (written under a temporary name, hashed, then renamed)."""
    from cardid.db.store import CardDB

    model, db = Path(model), Path(db)
    if not model.is_file() or model.suffix != ".onnx":
        raise BundleError(f"a bundle carries an ONNX model; {model} is not one (cardid export --target onnx)")
    loaded = CardDB.load(db)  # a DB that does not load is not bundled
    with atomic_dir(out, overwrite=overwrite, kind="bundle") as tmp:
        shutil.copy2(model, tmp / "model.onnx")
        _copy_tree(db, tmp / "db")
        meta: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "cardid_version": __version__,
            "model": "model.onnx",
            "db": "db",
            "detector": "classical",
            "detector_conf": detector_conf,
            "match": match or {},
            "evaluation": evaluation or {},
            "recipe": recipe or {},
        }
        if str(detector) != "classical":
            det = Path(detector)
            if det.suffix != ".onnx" or not det.is_file():
                raise BundleError(f"a bundle carries an ONNX detector or 'classical', not {detector}")
            shutil.copy2(det, tmp / "detector.onnx")
            meta["detector"] = "detector.onnx"
        if notices and Path(notices).is_dir():
            _copy_tree(Path(notices), tmp / "NOTICES")
        if source:
            _copy_tree(Path(source), tmp / "source")
            meta["source"] = "source"
        if evaluation:
            write_json_atomic(tmp / "evaluation.json", evaluation)
        gallery = _write_gallery(loaded, tmp / GALLERY)  # a copied bundle shows its scans too
        if gallery:
            meta["gallery"] = gallery
        meta["files"] = {name: sha256_file(tmp / name) for name in _files(tmp)}
        write_json_atomic(tmp / BUNDLE_JSON, meta)
    return load_bundle(out)


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Open a bundle, checking every file against ``bundle.json`` (missing, altered or added)."""
    root = Path(path)
    if root.is_file() and root.name == BUNDLE_JSON:
        root = root.parent
    if not (root / BUNDLE_JSON).is_file():
        raise BundleError(
            f"not a cardid bundle: {root} has no {BUNDLE_JSON} (build one with `cardid pipeline run`)"
        )
    meta = read_json(root / BUNDLE_JSON, "bundle description")
    if (
        not isinstance(meta, dict)
        or meta.get("format") != BUNDLE_FORMAT
        or not isinstance(meta.get("files"), dict)
    ):
        raise BundleError(f"{root / BUNDLE_JSON}: not a {BUNDLE_FORMAT} description")
    _check_meta(root, meta)
    if verify:
        files = meta["files"]
        for name, digest in files.items():
            p = inside(root, name, f"bundle {root}: file", BundleError)
            if not isinstance(digest, str):
                raise BundleError(f"bundle {root}: the hash of {name} is not text")
            if not p.is_file():
                raise BundleError(f"bundle {root}: {name} is missing; nothing was loaded")
            if sha256_file(p) != digest:
                raise BundleError(f"bundle {root}: {name} was altered (hash mismatch); nothing was loaded")
        extra = [n for n in _files(root) if n not in files]
        if extra:
            raise BundleError(
                f"bundle {root}: {extra[0]} is not part of the bundle ({len(extra)} extra file(s))"
            )
    return Bundle(root, meta)


def _check_meta(root: Path, meta: dict[str, Any]) -> None:
    """Every value of ``bundle.json`` of the kind it must be, and every name it gives inside the
    bundle: one error naming the key, never a traceback or a file elsewhere."""
    where = f"{root / BUNDLE_JSON}"

    def name(key: str, required: bool = True) -> None:
        v = meta.get(key)
        if v is None and not required:
            return
        if not isinstance(v, str) or not v:
            raise BundleError(f"{where}: {key!r} must name a file in the bundle, got {v!r}")
        if not (key == "detector" and v == "classical"):
            p = inside(root, v, f"{where}: {key}", BundleError)
            if p.is_symlink() or any(q.is_symlink() for q in p.parents if root in q.parents):
                raise BundleError(f"{where}: {key} {v!r} is a link; a bundle holds its own files")

    name("model")
    name("db")
    name("detector", required=False)
    name("source", required=False)
    conf = meta.get("detector_conf", 0.25)
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0 < conf <= 1:
        raise BundleError(f"{where}: detector_conf must be a number in (0, 1], got {conf!r}")
    match = meta.get("match") or {}
    if not isinstance(match, dict):
        raise BundleError(f"{where}: match must be a mapping of decision settings")
    from dataclasses import fields

    from cardid.decision.match import MatchConfig

    known = {f.name for f in fields(MatchConfig)}
    unknown = sorted(set(match) - known)
    if unknown:
        raise BundleError(f"{where}: unknown decision setting(s) in match: {', '.join(map(repr, unknown))}")
    try:
        MatchConfig(**match)
    except (TypeError, ValueError, CardIDError) as e:
        raise BundleError(f"{where}: match: {e}") from None
    gallery = meta.get("gallery") or {}
    if not isinstance(gallery, dict) or not all(isinstance(v, str) for v in gallery.values()):
        raise BundleError(f"{where}: gallery must map card ids to files")
    for v in gallery.values():
        inside(root / GALLERY, v, f"{where}: gallery file", BundleError)
