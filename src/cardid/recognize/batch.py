"""Many photos → one JSON record each, handed to a sink as each finishes (what `cardid recognize` runs).

The caller chooses where records go (a file, stdout, a list) and what it prints; this module
streams the photos (:func:`~cardid.recognize.inputs.recognize_stream`), writes the pictures asked
for, and counts what happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cardid.catalog.records import Catalog
from cardid.images import save_rgb
from cardid.recognize.inputs import prepare_pictures_dir, recognize_stream
from cardid.recognize.recognizer import Recognizer
from cardid.recognize.render import annotate, save_decision_png


@dataclass
class BatchSummary:
    """What a batch did: records written, unreadable files (and the first one's error), and the
    first ``keep`` records (for a table)."""

    written: int = 0
    errors: int = 0
    first_error: str | None = None
    first: list[dict] = field(default_factory=list)


def unique_stems(paths: Sequence[str]) -> list[str]:
    """One picture name per input: ``a/x.jpg`` and ``b/x.jpg`` become ``x`` and ``x-2``."""
    used: set[str] = set()
    out = []
    for p in paths:
        stem, n = Path(p).stem, 1
        name = stem
        while name in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        out.append(name)
    return out


def recognize_photos(
    rec: Recognizer,
    paths: Sequence[Path],
    sink: Callable[[dict], None],
    *,
    top: int = 5,
    workers: int = 2,
    strict: bool = False,
    done: Iterable[Path] = (),
    show: Path | None = None,
    catalog: Catalog | None = None,
    progress: Callable[[int], None] | None = None,
    keep: int = 50,
) -> BatchSummary:
    """Recognise ``paths`` (those not in ``done``: keys of :func:`~cardid.recognize.photo_key`) and hand each record to ``sink``: the JSON of
    its result (:meth:`~cardid.recognize.StreamItem.to_json`) with the model's identity. With
    ``show``, one picture per photo there (the photo annotated, or a crop beside its top-5 scans
    from ``catalog``)."""
    identity = rec.matcher.db.meta["model"]["identity"]
    summary = BatchSummary()
    if show:
        prepare_pictures_dir(show)
    names = dict(zip(map(str, paths), unique_stems([str(p) for p in paths]), strict=True))
    for item in recognize_stream(rec, paths, top, workers, strict, done, with_images=bool(show)):
        r = {**item.to_json(), "model": identity}
        sink(r)
        summary.written += 1
        if item.error is not None:
            summary.errors += 1
            summary.first_error = summary.first_error or item.error
        if len(summary.first) <= keep:
            summary.first.append(r)
        if show and item.image is not None:
            dest = Path(show) / f"{names[str(item.path)]}.png"
            if rec.detector is None:
                save_decision_png(dest, item.image, r["cards"][0], catalog)
            else:
                save_rgb(dest, annotate(item.image, r))
        if progress:
            progress(1)
    return summary
