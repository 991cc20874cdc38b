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
from cardid.io import atomic_dir, read_json, sha256_file, write_json_atomic

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
        from cardid.db.match import MatchConfig

        return MatchConfig(**{**(self.meta.get("match") or {}), **overrides})

    def recognizer(self, detector: bool = True, **match: Any):
        """A :class:`~cardid.recognize.Recognizer` as the bundle says: its model, DB, finder and
        decision settings (``detector=False``: each image is one card crop)."""
        from cardid.recognize import Recognizer, make_detector

        det = make_detector(self.detector, self.conf) if detector else None
        return Recognizer.open(self.model, self.db, det, self.match_config(**match))


def _files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != BUNDLE_JSON
    )


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
    CardDB.load(db)  # a DB that does not load is not bundled
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
    if verify:
        files = meta["files"]
        for name, digest in files.items():
            p = root / name
            if not p.is_file():
                raise BundleError(f"bundle {root}: {name} is missing; nothing was loaded")
            if sha256_file(p) != digest:
                raise BundleError(f"bundle {root}: {name} was altered (hash mismatch); nothing was loaded")
        extra = [n for n in _files(root) if n not in files and not Path(n).name.startswith(".")]
        if extra:
            raise BundleError(
                f"bundle {root}: {extra[0]} is not part of the bundle ({len(extra)} extra file(s))"
            )
    return Bundle(root, meta)
