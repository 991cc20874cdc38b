"""The voting state machine on synthetic detection sequences."""

import pytest

from cardid.track import (
    CONFIRMED,
    NO_CARD,
    STABILISING,
    CardTracker,
    Sighting,
    TrackerConfig,
    sightings_from_record,
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


def test_records_become_sightings_and_bad_configs_are_refused():
    rec = {
        "cards": [
            {
                "decision": "match",
                "card": {"card_id": "x-1"},
                "corners": [[10, 20], [60, 20], [60, 90], [10, 90]],
            },
            {"decision": "unknown", "card": None, "corners": [[100, 20], [150, 20], [150, 90], [100, 90]]},
        ]
    }
    s = sightings_from_record(rec)
    assert [x.card_id for x in s] == ["x-1", None] and s[0].box == (10, 20, 60, 90)
    with pytest.raises(ValueError):
        TrackerConfig(window=3, confirm_votes=4)
