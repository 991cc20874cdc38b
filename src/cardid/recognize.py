"""Recognise cards: image files → decisions with names, sets and numbers (and pictures).

Inputs are card crops, or — with a detector — whole photos (binder pages included): every card
is found, rectified, tried both ways up, embedded, verified and decided; a photo without any
card says ``no_card``. :class:`Recognizer` is the Python API for apps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from cardid.catalog.records import Catalog
from cardid.db.decide import Candidate, Decision
from cardid.db.match import MatchConfig, Matcher
from cardid.db.store import CardDB
from cardid.embed import Embedder, load_embedder
from cardid.errors import CardIDError
from cardid.io import load_rgb, save_rgb


def _card(db: CardDB, c: Candidate) -> dict:
    r = db.records[c.card_id]
    d = {"card_id": c.card_id, "name": r.name, "set_id": r.set_id, "set_name": r.set_name, "number": r.number}
    d.update(similarity=round(c.cos, 4), score=round(c.score, 4))
    if c.inliers is not None:
        d["inliers"] = c.inliers
    if c.strip is not None:
        d["strip"] = round(c.strip, 4)
    return d


def decision_record(db: CardDB, d: Decision, top: int = 5, **extra) -> dict:
    """The JSON form of one decision: what `cardid recognize` prints per image."""
    return {
        **extra,
        "decision": d.kind,
        "card": _card(db, d.cards[0]) if d.kind == "match" else None,
        "ambiguous_between": [_card(db, c) for c in d.cards] if d.kind == "ambiguous" else [],
        "resolved_by": d.resolved_by,
        # the printing's probability when the card has several printings in sight, and the set
        # weighed (each printing's evidence and probability); None: one printing, no doubt
        "probability": None if d.probability is None else round(d.probability, 4),
        "printing": d.printing,
        "printed": d.printed,
        "score": round(d.score, 4),
        "top": [_card(db, c) for c in d.candidates[:top]],
    }


def _thumb(img: np.ndarray, h: int) -> np.ndarray:
    w = max(1, round(img.shape[1] * h / img.shape[0]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def _label(img: np.ndarray, lines: Sequence[str], color=(0, 0, 0)) -> np.ndarray:
    pad = np.full((18 * len(lines) + 6, img.shape[1], 3), 255, np.uint8)
    for i, s in enumerate(lines):
        cv2.putText(pad, s[:40], (4, 16 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return np.vstack([img, pad])


COLORS = {"match": (0, 130, 0), "ambiguous": (200, 120, 0), "unknown": (200, 0, 0)}


def render_decision(
    query: np.ndarray,
    record: dict,
    catalog: Catalog | None,
    truth: str | None = None,
    height: int = 280,
) -> np.ndarray:
    """The query beside its top-5 gallery scans, each labelled; the chosen card framed in the
    decision's colour (green match, orange ambiguous), the true card (if known) underlined blue."""
    chosen = {c["card_id"] for c in ([record["card"]] if record["card"] else record["ambiguous_between"])}
    head = record["decision"] + (f" ({record['resolved_by']})" if record.get("resolved_by") else "")
    if record.get("probability") is not None:
        head += f" p {record['probability']:.2f}"
    tiles = [_label(_thumb(query, height), ["query", head], COLORS[record["decision"]])]
    for c in record["top"]:
        if catalog is not None and c["card_id"] in catalog:
            scan = _thumb(catalog.load_image(c["card_id"]), height)
        else:
            scan = np.full((height, round(height * 0.716), 3), 220, np.uint8)
        if c["card_id"] in chosen:
            cv2.rectangle(scan, (0, 0), (scan.shape[1] - 1, scan.shape[0] - 1), COLORS[record["decision"]], 6)
        if truth is not None and c["card_id"] == truth:
            cv2.line(scan, (0, scan.shape[0] - 4), (scan.shape[1], scan.shape[0] - 4), (0, 60, 220), 8)
        ev = f"cos {c['similarity']:.2f}" + (f" inl {c['inliers']}" if "inliers" in c else "")
        tiles.append(_label(scan, [c["card_id"], c["name"][:18], ev]))
    h = max(t.shape[0] for t in tiles)
    tiles = [np.vstack([t, np.full((h - t.shape[0], t.shape[1], 3), 255, np.uint8)]) for t in tiles]
    gap = np.full((h, 6, 3), 255, np.uint8)
    row = [tiles[0], np.full((h, 14, 3), 255, np.uint8)]
    for t in tiles[1:]:
        row += [t, gap]
    return np.hstack(row)


def save_decision_png(path: str | Path, *args, **kwargs) -> None:
    save_rgb(path, render_decision(*args, **kwargs))


def make_detector(spec: str | Path, conf: float = 0.25):
    """``classical`` (OpenCV, no training) or a YOLO-OBB ``.pt`` / ``.onnx``."""
    if str(spec) == "classical":
        from cardid.detect.classical import ClassicalFinder

        return ClassicalFinder()
    from cardid.detect.yolo import YoloDetector

    return YoloDetector(spec, conf=conf)


class Recognizer:
    """Photo → every card in it → decision. ``detector=None`` treats each image as one card crop."""

    #: a photo with at most this many detections, none recognised, is also tried as a whole
    retry_max_cards = 2

    def __init__(self, matcher: Matcher, detector=None, refine: bool = True, fallback: bool = True):
        self.matcher, self.detector, self.refine, self.fallback = matcher, detector, refine, fallback

    @classmethod
    def open(
        cls, model, db, detector=None, config: MatchConfig = MatchConfig(), fallback: bool = True
    ) -> Recognizer:
        embedder = load_embedder(model) if not isinstance(model, Embedder) else model
        card_db = db if isinstance(db, CardDB) else CardDB.load(db, embedder)
        det = make_detector(detector) if isinstance(detector, str | Path) else detector
        return cls(Matcher(card_db, embedder, config), det, fallback=fallback)

    def whole_image(self, image: np.ndarray, top: int = 5, reason: str = "nothing_found") -> dict:
        """Take the photo itself as the card (a card filling the frame has no outline to find, and a
        finder may then return its art box). The whole image and a centred card-shaped window are
        embedded; the one closer to its nearest gallery card is verified and decided. The record is
        flagged ``fallback: whole_image`` with the ``reason`` it ran."""
        from cardid.search import topk_cosine

        m, db = self.matcher, self.matcher.db
        crops = [image, *_card_windows(image)]
        emb = m.embedder.embed(crops)
        k = int(topk_cosine(emb, db.embeddings, 1)[0][:, 0].argmax())
        d = m.decide(m.query(crops[k], emb[k]))
        h, w = image.shape[:2]
        rec = decision_record(db, d, top)
        rec.update(fallback="whole_image", fallback_reason=reason, window=["whole", "centre"][min(k, 1)])
        rec["corners"] = _window_corners(w, h, k)
        return {"rec": rec, "decision": d}

    def timed(self, image: np.ndarray, top: int = 5) -> dict:
        """:meth:`recognize_photo` with what every output records beside it: its milliseconds and
        whether the DB was calibrated."""
        t = time.perf_counter()
        r = self.recognize_photo(image, top)
        return {**r, "ms": round((time.perf_counter() - t) * 1e3, 1), "calibrated": self.matcher.calibrated}

    def recognize_photo(self, image: np.ndarray, top: int = 5) -> dict:
        """One photo → ``{"no_card": bool, "cards": [decision record + corners]}``.

        All detected cards are embedded in one batch, both ways up; the orientation whose nearest
        gallery card is closer is kept, and only it is verified."""
        from cardid.detect.rectify import orientations, rectify, refine_corners
        from cardid.search import topk_cosine

        m, db = self.matcher, self.matcher.db
        if self.detector is None:
            d = m.decide(m.prepare([image])[0])
            return {"no_card": False, "cards": [decision_record(db, d, top)], "_decisions": [d]}
        dets = sorted(self.detector.detect(image), key=lambda d: (d.box()[1], d.box()[0]))
        if not dets:
            if not self.fallback:
                return {"no_card": True, "cards": [], "_decisions": []}
            fb = self.whole_image(image, top)
            named = fb["decision"].kind in ("match", "ambiguous")
            return {
                "no_card": not named,
                "cards": [fb["rec"]],
                "_decisions": [fb["decision"]],
                "fallback": True,
            }
        quads = [refine_corners(image, det.corners) if self.refine else det.corners for det in dets]
        crops = [o for q in quads for o in orientations(rectify(image, q))]
        emb = m.embedder.embed(crops)
        best = topk_cosine(emb, db.embeddings, 1)[0][:, 0].reshape(-1, 2).argmax(1)
        cards, decisions = [], []
        for i, det in enumerate(dets):
            k = 2 * i + int(best[i])
            d = m.decide(m.query(crops[k], emb[k]))
            rec = decision_record(db, d, top)
            rec.update(
                corners=[[round(float(x), 1), round(float(y), 1)] for x, y in quads[i]],
                detection_score=round(det.score, 3),
                upside_down=bool(best[i]),
            )
            cards.append(rec)
            decisions.append(d)
        if (
            self.fallback
            and len(dets) <= self.retry_max_cards
            and all(d.kind == "unknown" for d in decisions)
        ):
            # one or two things found and none of them is a known card: the finder may have found
            # a card's art box or a frame inside the photo; the photo as a whole gets a second look
            fb = self.whole_image(image, top, reason="nothing_recognised")
            if fb["decision"].kind in ("match", "ambiguous"):
                cards.append(fb["rec"])
                decisions.append(fb["decision"])
                return {"no_card": False, "cards": cards, "_decisions": decisions, "fallback": True}
        return {"no_card": False, "cards": cards, "_decisions": decisions}


def _centre_window(w: int, h: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the centred card-shaped (portrait) window of a w×h photo, or None when
    the photo already has the card's aspect."""
    from cardid.preprocess import CARD_ASPECT

    if abs(w / h - CARD_ASPECT) < 0.05:
        return None
    if w / h > CARD_ASPECT:  # too wide: full height, card-wide
        cw = round(h * CARD_ASPECT)
        return (w - cw) // 2, 0, (w - cw) // 2 + cw, h
    ch = round(w / CARD_ASPECT)
    return 0, (h - ch) // 2, w, (h - ch) // 2 + ch


def _card_windows(image: np.ndarray) -> list[np.ndarray]:
    box = _centre_window(image.shape[1], image.shape[0])
    if box is None:
        return []
    x0, y0, x1, y1 = box
    return [np.ascontiguousarray(image[y0:y1, x0:x1])]


def _window_corners(w: int, h: int, k: int) -> list[list[float]]:
    """Corners (TL TR BR BL) of window ``k``: 0 the whole photo, 1 the centred card window."""
    x0, y0, x1, y1 = (_centre_window(w, h) if k == 1 else None) or (0, 0, w, h)
    return [
        [float(x0), float(y0)],
        [float(x1 - 1), float(y0)],
        [float(x1 - 1), float(y1 - 1)],
        [float(x0), float(y1 - 1)],
    ]


def annotate(image: np.ndarray, result: dict) -> np.ndarray:
    """The photo with each card outlined in its decision's colour and labelled."""
    out = image.copy()
    scale = max(1.0, max(image.shape[:2]) / 900)
    for c in result["cards"]:
        if "corners" not in c:
            continue
        pts = np.array(c["corners"], np.int32)
        color = COLORS[c["decision"]]
        cv2.polylines(out, [pts], True, color, max(2, round(3 * scale)), cv2.LINE_AA)
        card = c["card"] or (c["ambiguous_between"] or [None])[0]
        label = f"{card['name']} {card['number']} {card['similarity']:.2f}" if card else "unknown"
        if c["decision"] == "ambiguous":
            label = "? " + label
        x, y = int(pts[:, 0].min()), max(int(pts[:, 1].min()) - 6, 14)
        fs = 0.5 * scale
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        cv2.rectangle(out, (x, y - th - 4), (x + tw + 4, y + 2), (255, 255, 255), -1)
        cv2.putText(
            out, label, (x + 2, y), cv2.FONT_HERSHEY_SIMPLEX, fs, color, max(1, round(scale)), cv2.LINE_AA
        )
    if result["no_card"]:
        cv2.putText(
            out, "no card", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0 * scale, (200, 0, 0), 2, cv2.LINE_AA
        )
    return out


#: The marker kind of a ``--show`` folder: a folder walk never takes cardid's own pictures as photos.
PICTURES_KIND = "pictures"


def _walk_photos(folder: Path, exclude: set[Path]) -> list[Path]:
    """Every photo under ``folder``, sorted: hidden files (macOS ``._*`` resource forks, ``.DS_Store``)
    and hidden folders skipped, and so is any folder of cardid's own pictures (``--show`` output)."""
    from cardid.io import PHOTO_EXTENSIONS, marker_kind

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
            if not f.startswith(".") and p.suffix.lower() in PHOTO_EXTENSIONS and p.resolve() not in exclude:
                out.append(p)
    return sorted(out)


def expand_inputs(specs: Sequence[str | Path], exclude: Iterable[str | Path] = ()) -> list[Path]:
    """Photos from what a user types: files, folders (every photo inside, recursively, sorted),
    globs (``'photos/*.jpg'``) and CSVs of paths (a ``file`` or ``path`` column, else the first;
    relative to the CSV). Order is kept; a file named twice (by any spelling: relative, absolute,
    through a link) is recognised once. Folders skip hidden files and cardid's own outputs:
    ``exclude`` (this run's ``--show`` folder and ``--json`` file) and any ``--show`` folder."""
    import glob

    from cardid.io import read_csv_rows

    skip = {Path(e).resolve() for e in exclude}
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            out += _walk_photos(p, skip)
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
        key = photo_key(r["image"])
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


def recognize_stream(
    rec: Recognizer,
    images: Sequence[str | Path],
    top: int = 5,
    workers: int = 2,
    strict: bool = False,
    skip: Iterable[str | Path] = (),
    with_images: bool = False,
) -> Iterator[tuple[dict, np.ndarray | None]]:
    """``(record, image or None)`` per file, in order, as each finishes. Files are decoded by
    ``workers`` threads ahead of recognition, never more than ``workers`` decoded images at a time
    (the one being recognised included), so memory is bounded however many files there are. The
    image is handed out only with ``with_images`` (for pictures). An unreadable file yields a
    record with ``error`` and the stream goes on, unless ``strict``. ``skip``: paths already done
    (``--resume``)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

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
                yield {"image": str(path), "error": str(err)}, None
            else:
                r = {"image": str(path), **rec.timed(im, top)}
                out = im if with_images else None
                del im
                yield r, out
                del out
            fill(workers)  # nothing decoded is held here now


def recognize_files(
    rec: Recognizer, images: Sequence[str | Path], top: int = 5
) -> list[tuple[dict, np.ndarray]]:
    """Every file at once, stopping at the first unreadable one (naming it): for a handful of
    images whose pictures are wanted together. Many files: :func:`recognize_stream`."""
    if not images:
        raise CardIDError("no images given")
    return list(recognize_stream(rec, images, top, workers=1, strict=True, with_images=True))


VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def recognize_video(
    rec: Recognizer,
    path: str | Path,
    every: int = 1,
    tracker=None,
    top: int = 5,
    progress=None,
) -> dict:
    """A video file (OpenCV decode) → every card confirmed by voting across frames, once per visit
    (:mod:`cardid.track`), with the frames it was seen in. ``every``: recognise every n-th frame."""
    import cv2

    from cardid.track import CardTracker, sightings_from_record

    path = Path(path)
    if not path.is_file():
        raise CardIDError(f"video not found: {path}")
    if every < 1:
        raise CardIDError(f"every must be ≥ 1, got {every}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CardIDError(f"cannot decode video: {path}")
    tracker = tracker or CardTracker()
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    frame_no, used, t0 = -1, 0, time.perf_counter()
    info: dict[int, dict] = {}  # track id → the decision record that confirmed it
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frame_no += 1
            if frame_no % every:
                continue
            r = rec.recognize_photo(np.ascontiguousarray(bgr[..., ::-1]), top)
            scene = tracker.update(sightings_from_record(r))
            for ev in scene["confirmed"]:
                info[ev["track_id"]] = ev["info"]
            used += 1
            if progress:
                progress(1)
    finally:
        cap.release()
    if frame_no < 0:
        raise CardIDError(f"no frames could be decoded from {path}")
    sampled = list(range(0, frame_no + 1, every))  # tracker frame k is video frame sampled[k]
    cards = []
    for v in tracker.visits():
        rec_ = info.get(v["track_id"], {})
        card = rec_.get("card") or {"card_id": v["card_id"]}
        frames = [sampled[k] for k in v["frames"]]
        cards.append(
            {
                "card": card,
                "first_frame": frames[0],
                "last_frame": frames[-1],
                "frames": frames,
                "seconds": [round(frames[0] / fps, 2), round(frames[-1] / fps, 2)] if fps else None,
            }
        )
    return {
        "video": str(path),
        "frames": frame_no + 1,
        "recognised_frames": used,
        "fps": round(fps, 3),
        "ms_per_frame": round((time.perf_counter() - t0) * 1e3 / max(used, 1), 1),
        "cards": cards,
        "calibrated": rec.matcher.calibrated,
    }
