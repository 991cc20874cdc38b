"""Cards in a video file: every n-th frame recognised, each card confirmed across frames once per visit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cardid.detect.geometry import corners_box
from cardid.errors import CardIDError
from cardid.recognize.recognizer import Recognizer
from cardid.recognize.results import PhotoResult
from cardid.track import Sighting

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

    from cardid.track import CardTracker

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
            scene = tracker.update(sightings(r))
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


def sightings(result: PhotoResult, records: list[dict] | None = None) -> list[Sighting]:
    """The cards of one photo's result as sightings: a match votes for its card, anything else
    (ambiguous, unknown) for nothing; each carries its card's JSON record (``records``: the
    result's, if already written) to pass through to whoever shows the scene."""
    records = records if records is not None else [c.to_json() for c in result.cards]
    out = []
    for c, rec in zip(result.cards, records, strict=True):
        if not c.corners:
            continue
        out.append(Sighting(corners_box(c.corners), c.decision.card_id, rec))
    return out
