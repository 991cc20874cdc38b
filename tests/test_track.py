"""The voting state machine on synthetic detection sequences."""

import pytest

from cardid.recognize.video import sightings
from cardid.track import (
    CONFIRMED,
    NO_CARD,
    STABILISING,
    CardTracker,
    Sighting,
    TrackerConfig,
)

A = (100, 100, 200, 240)
B = (400, 100, 500, 240)


def run(frames, cfg=TrackerConfig()):
    tr = CardTracker(cfg)
    return tr, [tr.update(f) for f in frames]


def test_a_card_held_steady_is_confirmed_once():
    _, scenes = run([[Sighting(A, "x-1")]] * 12)
    assert scenes[0]["state"] == STABILISING
    confirmed = [c for s in scenes for c in s["confirmed"]]
    assert [c["card_id"] for c in confirmed] == ["x-1"]  # once, not every frame
    assert confirmed[0]["frame"] == 3  # the 4th frame naming it
    assert scenes[-1]["state"] == CONFIRMED and scenes[-1]["tracks"][0]["card_id"] == "x-1"


def test_flicker_does_not_confirm():
    names = ["x-1", "x-2", "x-3", None, "x-1", "x-2", "x-3", None, "x-2", "x-1", "x-3", None]
    _, scenes = run([[Sighting(A, n)] for n in names])
    assert not any(s["confirmed"] for s in scenes)
    assert all(s["state"] == STABILISING for s in scenes)


def test_a_mostly_right_card_survives_a_few_bad_frames():
    names = ["x-1", None, "x-1", "x-9", "x-1", "x-1", None, "x-1"]
    _, scenes = run([[Sighting(A, n)] for n in names])
    assert [c["card_id"] for s in scenes for c in s["confirmed"]] == ["x-1"]


def test_a_card_that_leaves_and_returns_counts_once_per_visit():
    cfg = TrackerConfig(max_missing=2)
    frames = [[Sighting(A, "x-1")]] * 6 + [[]] * 4 + [[Sighting(A, "x-1")]] * 6
    tr, scenes = run(frames, cfg)
    assert [c["card_id"] for s in scenes for c in s["confirmed"]] == ["x-1", "x-1"]
    assert scenes[7]["state"] == NO_CARD
    visits = tr.visits()
    assert len(visits) == 2 and visits[0]["last_frame"] == 5 and visits[1]["first_frame"] == 10
    # a short dropout (hand in front) is the same visit
    tr, _ = run([[Sighting(A, "x-1")]] * 5 + [[]] * 2 + [[Sighting(A, "x-1")]] * 5, cfg)
    assert len(tr.visits()) == 1


def test_two_cards_are_tracked_apart_even_when_they_move():
    frames = []
    for i in range(8):
        d = 5 * i
        frames.append([Sighting((A[0] + d, A[1], A[2] + d, A[3]), "x-1"), Sighting(B, "x-2")])
    _, scenes = run(frames)
    assert sorted(c["card_id"] for s in scenes for c in s["confirmed"]) == ["x-1", "x-2"]
    assert len(scenes[-1]["tracks"]) == 2


def test_results_become_sightings_and_bad_configs_are_refused():
    from cardid.decision.decide import MATCH, UNKNOWN, Candidate, Decision
    from cardid.recognize import CardResult, PhotoResult

    x1 = Candidate(0, "x-1", 0.9, 0.0)
    matched = Decision(MATCH, [x1], 1.0, [x1])
    result = PhotoResult(
        (
            CardResult(matched, [[10, 20], [60, 20], [60, 90], [10, 90]]),
            CardResult(Decision(UNKNOWN, [], 0.1, []), [[100, 20], [150, 20], [150, 90], [100, 90]]),
            CardResult(matched),  # a crop with no corners: nowhere in the frame, no sighting
        )
    )
    s = sightings(result, records=[{"n": 1}, {"n": 2}, {"n": 3}])
    assert [x.card_id for x in s] == ["x-1", None] and s[0].box == (10, 20, 60, 90)
    assert [x.info for x in s] == [{"n": 1}, {"n": 2}]  # each card's record, passed through
    with pytest.raises(ValueError):
        TrackerConfig(window=3, confirm_votes=4)


def test_a_video_prints_each_card_once_per_visit(tmp_path, synth_catalog):
    """A simulated video: a card held for 10 frames, gone for 6, shown again for 10."""
    import json

    import cv2
    import numpy as np
    from tests.conftest import build_index

    from cardid.cli import main
    from cardid.decision.decide import Calibration
    from cardid.detect import Detection
    from cardid.recognize import Recognizer, recognize_video

    model, db = build_index(tmp_path, synth_catalog.root, "--calibrate-cards", "6")
    names = [synth_catalog[c].name for c in synth_catalog.ids]
    cid = next(c for c in synth_catalog.ids if names.count(synth_catalog[c].name) == 1)  # no reprint
    scan = cv2.resize(synth_catalog.load_image(cid), (320, 448))
    frame = np.full((520, 560, 3), 60, np.uint8)
    frame[36:484, 120:440] = scan
    empty = np.full_like(frame, 60)
    path = tmp_path / "cards.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (560, 520))
    for f in [frame] * 10 + [empty] * 6 + [frame] * 10:
        vw.write(np.ascontiguousarray(f[..., ::-1]))
    vw.release()
    quad = np.float32([[120, 36], [440, 36], [440, 484], [120, 484]])

    class Finder:  # sees the card when it is there (the test is about voting over frames)
        def detect(self, image):
            inside = image[36:484, 120:440].astype(np.float32)
            return [Detection(quad, 0.9)] if np.abs(inside - 60).mean() > 10 else []

    rec = Recognizer.open(model, db, Finder(), fallback=False)
    rec = rec.with_(calibration=Calibration("fused"))
    res = recognize_video(rec, path)
    assert res["frames"] == 26 and [c["card"]["card_id"] for c in res["cards"]] == [cid, cid]
    assert res["cards"][0]["first_frame"] == 0 and res["cards"][1]["first_frame"] == 16
    assert res["cards"][0]["seconds"][0] == 0.0
    # through the CLI (classical finder, the stored calibration): one JSON line per video, no crash
    args = [
        "recognize",
        str(path),
        "--model",
        str(model),
        "--db",
        str(db),
        "--json",
        str(tmp_path / "v.jsonl"),
    ]
    assert main(args) == 0
    out = json.loads((tmp_path / "v.jsonl").read_text())
    assert out["frames"] == 26 and "cards" in out
    # --resume keeps what the file holds (it was replaced: 6 lines became 1) and skips the done video
    lines = (tmp_path / "v.jsonl").read_text().splitlines()
    (tmp_path / "v.jsonl").write_text(
        "\n".join([lines[0]] * 3 + [lines[0].replace(str(path), "other.avi")]) + "\n"
    )
    assert main([*args, "--resume"]) == 0
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 4  # nothing lost, nothing twice
    assert main(args) == 1  # without --resume or --overwrite: never replaced


def _parade(tracker, cards: int, frames_each: int = 6):
    """``cards`` cards shown one after another, each held steady, then a gap."""
    for i in range(cards):
        for _ in range(frames_each):
            tracker.update([Sighting(A, f"x-{i}", {"blob": "x" * 1000})])
        for _ in range(tracker.config.max_missing + 2):
            tracker.update([])
    return tracker


def test_a_live_tracker_forgets_tracks_that_ended():
    """A live camera runs for hours: finished tracks are dropped, so memory is the cards in view."""
    live = _parade(CardTracker(keep_history=False), 200)
    assert live.tracks == [] and live.ended == []
    video = _parade(CardTracker(), 200)  # a video's summary keeps every confirmed visit
    assert [v["card_id"] for v in video.visits()] == [f"x-{i}" for i in range(200)]
    flicker = CardTracker()  # a track never confirmed is not a visit, and is not kept
    for _ in range(30):
        flicker.update([Sighting(B, None)])
        for _ in range(flicker.config.max_missing + 2):
            flicker.update([])
    assert flicker.ended == [] and flicker.visits() == []
