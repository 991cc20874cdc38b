"""The one JSON form of a result (cardid.recognize.results), built from hand-made decisions: what
`recognize` prints, `serve` answers and `eval photos` keeps, key for key and in order."""

import json

from tests.db.handmade import HandDB

from cardid.decision.decide import AMBIGUOUS, MATCH, UNKNOWN, Candidate, Decision
from cardid.recognize import CardResult, PhotoResult

DB = HandDB(
    [
        {"id": "base1-58", "name": "Pikachu", "set_id": "base1", "set_name": "Base", "number": "58"},
        {"id": "xy12-35", "name": "Pikachu", "set_id": "xy12", "set_name": "Evolutions", "number": "35"},
    ],
    [[1, 0], [0.9, 0.1]],
)
P1 = Candidate(0, "base1-58", 0.91234, 0.5, inliers=120, score=4.38212)
P2 = Candidate(1, "xy12-35", 0.88, 0.4, inliers=118, strip=-0.31234, score=4.3455)
CORNERS = [[10.0, 20.0], [110.0, 20.0], [110.0, 160.0], [10.0, 160.0]]


def test_a_found_card_carries_its_corners_and_orientation():
    d = Decision(MATCH, [P1], 4.38212, [P1, P2], resolved_by="art", probability=0.97321)
    card = CardResult(
        d, CORNERS, detection_score=0.912, upside_down=False, plausibility=0.973, merged=2, db=DB, top=1
    )
    rec = card.to_json()
    assert list(rec) == [
        "decision", "card", "ambiguous_between", "resolved_by", "probability", "printing", "printed",
        "score", "top", "corners", "detection_score", "upside_down", "plausibility", "merged",
    ]  # fmt: skip
    assert rec["plausibility"] == 0.973 and rec["merged"] == 2
    assert rec["card"] == {
        "card_id": "base1-58", "name": "Pikachu", "set_id": "base1", "set_name": "Base", "number": "58",
        "similarity": 0.9123, "score": 4.3821, "inliers": 120,
    }  # fmt: skip
    assert rec["probability"] == 0.9732 and rec["top"] == [rec["card"]] and rec["corners"] == CORNERS
    assert card.card_id == "base1-58"


def test_an_ambiguous_set_lists_its_cards_and_a_fallback_says_where_it_looked():
    d = Decision(AMBIGUOUS, [P1, P2], 4.38212, [P1, P2])
    rec = CardResult(
        d, CORNERS, fallback="whole_image", reason="nothing_found", window="whole", db=DB
    ).to_json()
    assert rec["card"] is None and [c["card_id"] for c in rec["ambiguous_between"]] == ["base1-58", "xy12-35"]
    assert rec["ambiguous_between"][1]["strip"] == -0.3123
    assert [k for k in rec if k in ("fallback", "fallback_reason", "window", "corners")] == [
        "fallback", "fallback_reason", "window", "corners",
    ]  # fmt: skip
    assert "detection_score" not in rec and rec["fallback_reason"] == "nothing_found"


def test_a_photo_json_is_cards_then_flags_then_timing():
    crop = CardResult(Decision(UNKNOWN, [], 0.1, [P1]), db=DB)
    assert "corners" not in crop.to_json()  # a crop given as such has no place in a photo
    photo = PhotoResult((crop,), no_card=False, fallback=True, ms=12.3, calibrated=True)
    rec = photo.to_json()
    assert list(rec) == ["no_card", "cards", "fallback", "ms", "calibrated"]
    assert PhotoResult((), no_card=True).to_json() == {"no_card": True, "cards": []}
    assert photo.decisions == [crop.decision]
    json.dumps(rec)  # plain JSON all through
