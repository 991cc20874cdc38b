"""Photos from what a user types, streamed through a recognizer in bounded memory.

Files, folders, globs and CSV lists become one ordered list of photos (:func:`expand_inputs`);
:func:`recognize_stream` decodes them ahead in threads and yields each one's typed result as it
finishes; :func:`read_results` reads an earlier run's JSON lines back for ``--resume``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cardid.errors import CardIDError
from cardid.images import load_rgb
from cardid.recognize.recognizer import Recognizer
from cardid.recognize.results import PhotoResult

#: The marker kind of a ``--show`` folder: a folder walk never takes cardid's own pictures as photos.
PICTURES_KIND = "pictures"


def _walk_photos(folder: Path, exclude: set[Path], skipped: list[Path] | None = None) -> list[Path]:
    """Every photo under ``folder``, sorted: hidden files (macOS ``._*`` resource forks, ``.DS_Store``)
    and hidden folders skipped, and so is any folder of cardid's own pictures (``--show`` output)."""
    from cardid.images import PHOTO_EXTENSIONS
    from cardid.io import marker_kind

    out = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        keep = []
        for d in sorted(dirs):
            sub = here / d
            if d.startswith(".") or sub.resolve() in exclude or marker_kind(sub) == PICTURES_KIND:
                continue
            keep.append(d)
        dirs[:] = keep
        for f in files:
            p = here / f
            if f.startswith(".") or p.resolve() in exclude:
                continue
            if p.suffix.lower() in PHOTO_EXTENSIONS:
                out.append(p)
            elif skipped is not None:
                skipped.append(p)
    return sorted(out)


def expand_inputs(
    specs: Sequence[str | Path], exclude: Iterable[str | Path] = (), skipped: list[Path] | None = None
) -> list[Path]:
    """Photos from what a user types: files, folders (every photo inside, recursively, sorted),
    globs (``'photos/*.jpg'``) and CSVs of paths (a ``file`` or ``path`` column, else the first;
    relative to the CSV). Order is kept; a file named twice (by any spelling: relative, absolute,
    through a link) is recognised once. Folders skip hidden files and cardid's own outputs:
    ``exclude`` (this run's ``--show`` folder and ``--json`` file) and any ``--show`` folder;
    ``skipped`` collects the other files a folder held that are no photo (to say so)."""
    import glob

    from cardid.io import read_csv_rows

    skip = {Path(e).resolve() for e in exclude}
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            out += _walk_photos(p, skip, skipped)
        elif p.suffix.lower() == ".csv" and p.is_file():
            rows = read_csv_rows(p, (), "photo list")
            col = next((c for c in ("file", "path") if c in rows[0]), next(iter(rows[0])))
            out += [p.parent / r[col] for r in rows]
        elif any(c in str(spec) for c in "*?[") and not p.exists():
            matches = sorted(glob.glob(str(spec), recursive=True))
            if not matches:
                raise CardIDError(f"no files match {spec!r}")
            out += [Path(m) for m in matches if Path(m).resolve() not in skip]
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = [q for q in out if not ((k := photo_key(q)) in seen or seen.add(k))]
    if not unique:
        raise CardIDError("no images given (empty folder or list?)")
    return unique


def photo_key(path: str | Path) -> Path:
    """What identifies a photo across runs (``--resume``) however it is spelled: its resolved path."""
    return Path(path).resolve()


def prepare_pictures_dir(show: str | Path) -> Path:
    """Create ``--show``'s folder marked as cardid's pictures, so that no later folder walk takes
    them for photos. A folder that already holds files cardid did not write is refused (it may be
    the photos themselves): pictures go to a new, empty or earlier ``--show`` folder."""
    from cardid.io import is_cardid_dir, marker_kind, write_marker

    show = Path(show)
    if show.exists():
        if not show.is_dir():
            raise CardIDError(f"--show {show} is a file, not a folder")
        if is_cardid_dir(show):
            kind = marker_kind(show)
            if kind != PICTURES_KIND:
                raise CardIDError(
                    f"--show {show} holds a cardid {kind or '?'}, not pictures: choose another folder"
                )
        elif any(show.iterdir()):
            raise CardIDError(
                f"--show {show} already holds files cardid did not write (photos?): choose a new or empty folder"
            )
    show.mkdir(parents=True, exist_ok=True)
    if not is_cardid_dir(show):
        write_marker(show, PICTURES_KIND)
    return show


def read_results(path: str | Path, identity: str) -> tuple[list[str], set[Path], list[str]]:
    """An earlier run's JSON lines, for ``--resume``: ``(lines to keep, photos done, notes)``.

    A photo recorded twice keeps its last record; a photo whose record is an ``error`` is not done
    (it is tried again and its new record replaces the error); a torn last line (a run killed
    mid-write) is dropped with a note. A line that is not a cardid record, or a record made with
    another model, is an error naming the line: that file is not this run's to extend."""
    import json

    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    notes: list[str] = []
    by_key: dict[Path, tuple[str, bool]] = {}
    dupes = 0
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) and not text.endswith("\n"):
                notes.append(
                    f"{path} line {i} is incomplete (a run stopped mid-write): dropped, recognised again"
                )
                continue
            raise CardIDError(f"{path} line {i} is not JSON ({e.msg}): cannot resume from it") from e
        if not isinstance(r, dict) or not isinstance(r.get("image"), str) or "model" not in r:
            raise CardIDError(
                f"{path} line {i} is not a cardid recognize record: cannot resume from it "
                "(write to another file, or --overwrite it)"
            )
        if r["model"] != identity:
            raise CardIDError(
                f"{path} was written with model {r['model']!r}, not {identity!r}: "
                "resume with the same model and DB, or write to another file"
            )
        # where the photo is (``path``, absolute); a record from before it: as given, from here
        key = photo_key(r["path"] if isinstance(r.get("path"), str) else r["image"])
        dupes += by_key.pop(key, None) is not None  # the later record stands, in the later place
        by_key[key] = (line, "error" in r)
    if dupes:
        notes.append(f"{dupes} photo(s) recorded more than once in {path}: the last record of each is kept")
    retry = sum(err for _, err in by_key.values())
    if retry:
        notes.append(f"{retry} photo(s) recorded as unreadable in {path} are tried again")
    keep = [line for line, err in by_key.values() if not err]
    done = {k for k, (_, err) in by_key.items() if not err}
    return keep, done, notes


@dataclass(frozen=True)
class StreamItem:
    """One file of a stream: its result, or why it could not be read; its pixels if asked for."""

    path: str | Path  # as given
    result: PhotoResult | None
    error: str | None = None
    image: np.ndarray | None = None

    def to_json(self) -> dict:
        """Its JSON line: ``image`` (the path as given), ``path`` (where it is: ``--resume``
        finds it from any folder) and the result, or ``error``."""
        head = {"image": str(self.path), "path": str(photo_key(self.path))}
        if self.result is None:
            return {**head, "error": self.error}
        return {**head, **self.result.to_json()}


def recognize_stream(
    rec: Recognizer,
    images: Sequence[str | Path],
    top: int = 5,
    workers: int = 2,
    strict: bool = False,
    skip: Iterable[str | Path] = (),
    with_images: bool = False,
) -> Iterator[StreamItem]:
    """One :class:`StreamItem` per file, in order, as each finishes. Files are decoded by
    ``workers`` threads ahead of recognition, never more than ``workers`` decoded images at a time
    (the one being recognised included), so memory is bounded however many files there are. The
    image is handed out only with ``with_images`` (for pictures). An unreadable file yields an
    item with its ``error`` and the stream goes on, unless ``strict``. ``skip``: paths already
    done (``--resume``)."""
    if workers < 1:
        raise CardIDError(f"workers must be ≥ 1, got {workers}")
    done = {photo_key(s) for s in skip}
    it = iter([p for p in images if photo_key(p) not in done])

    def decode(path):
        try:
            return load_rgb(path), None
        except CardIDError as e:
            return None, e

    with ThreadPoolExecutor(workers, thread_name_prefix="cardid-decode") as pool:
        queue: deque = deque()

        def fill(limit: int) -> None:
            while len(queue) < limit and (path := next(it, None)) is not None:
                queue.append((path, pool.submit(decode, path)))

        fill(workers)
        while queue:
            path, fut = queue.popleft()
            im, err = fut.result()
            del fut  # a finished future keeps its result (the image) alive
            fill(workers - 1)  # this image and at most workers - 1 more
            if err is not None:
                if strict:
                    raise err
                yield StreamItem(path, None, str(err))
            else:
                result = rec.timed(im, top)
                item = StreamItem(path, result, image=im if with_images else None)
                del im
                yield item
                del item
            fill(workers)  # nothing decoded is held here now


def recognize_files(rec: Recognizer, images: Sequence[str | Path], top: int = 5) -> list[StreamItem]:
    """Every file at once, stopping at the first unreadable one (naming it): for a handful of
    images whose pictures are wanted together. Many files: :func:`recognize_stream`."""
    if not images:
        raise CardIDError("no images given")
    return list(recognize_stream(rec, images, top, workers=1, strict=True, with_images=True))
