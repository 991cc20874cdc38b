"""Cards in a video file: every n-th frame recognised, each card confirmed across frames once per visit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cardid.errors import CardIDError
from cardid.recognize.recognizer import Recognizer

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

    from cardid.track import CardTracker, sightings

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
