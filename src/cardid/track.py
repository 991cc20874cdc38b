"""Cards across frames: track each card by its box, vote on its name, confirm it once per visit.

A live camera (or a video) gives a decision per card per frame, and single frames flicker: glare,
motion blur, a hand. :class:`CardTracker` matches each frame's cards to tracks by box overlap and
counts, per track, which card each frame named. A track is

- ``stabilising`` until one card id holds at least ``confirm_votes`` of its last ``window`` frames
  and at least ``min_share`` of them,
- ``confirmed`` from then on (reported once, in the frame it happens: one scan per visit),
- ended after ``max_missing`` frames without it; the same card shown again is a new visit.

The whole scene is ``no_card`` (no track), ``stabilising`` (tracks, none confirmed) or
``confirmed``. No JavaScript decides anything: the browser only draws what this returns.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from cardid.detect.geometry import box_iou

NO_CARD, STABILISING, CONFIRMED = "no_card", "stabilising", "confirmed"


@dataclass(frozen=True)
class TrackerConfig:
    window: int = 8  # frames a track's vote looks back over
    confirm_votes: int = 4  # frames that must name the same card
    min_share: float = 0.6  # ... and this share of the window's frames with a name
    max_missing: int = 5  # frames a track survives unseen
    min_iou: float = 0.3  # box overlap that continues a track

    def __post_init__(self) -> None:
        if not (1 <= self.confirm_votes <= self.window) or not 0 < self.min_share <= 1:
            raise ValueError("need 1 ≤ confirm_votes ≤ window and 0 < min_share ≤ 1")
        if self.max_missing < 0 or not 0 <= self.min_iou <= 1:
            raise ValueError("need max_missing ≥ 0 and 0 ≤ min_iou ≤ 1")


@dataclass
class Sighting:
    """One card in one frame: its box (x0, y0, x1, y1) and the card it was named as (``None``:
    unknown or ambiguous, which votes for nothing)."""

    box: tuple[float, float, float, float]
    card_id: str | None
    info: dict = field(default_factory=dict)  # the decision record, passed through


@dataclass
class Track:
    track_id: int
    box: tuple[float, float, float, float]
    first_frame: int
    last_frame: int
    votes: deque = field(default_factory=deque)  # card id or None per frame seen
    state: str = STABILISING
    card_id: str | None = None  # the confirmed (or leading) card
    frames: list[int] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def leader(self) -> tuple[str | None, int]:
        named = Counter(v for v in self.votes if v is not None)
        if not named:
            return None, 0
        cid, n = named.most_common(1)[0]
        return cid, n

    def to_dict(self) -> dict:
        cid, n = self.leader()
        return {
            "track_id": self.track_id,
            "state": self.state,
            "card_id": self.card_id if self.state == CONFIRMED else cid,
            "votes": n,
            "frames_seen": len(self.frames),
            "box": [round(float(v), 1) for v in self.box],
        }


class CardTracker:
    """Feed it every frame's sightings with :meth:`update`; it returns the scene."""

    def __init__(self, config: TrackerConfig = TrackerConfig(), keep_history: bool = True):
        """``keep_history``: remember confirmed visits after their card has left (for
        :meth:`visits`, a video's summary). A live camera that runs for hours passes False: a
        track that has ended is then dropped, so memory stays bounded by the cards in view."""
        self.config = config
        self.keep_history = keep_history
        self.frame = -1
        self.tracks: list[Track] = []
        self.ended: list[Track] = []
        self._next_id = 0

    def update(self, sightings: Sequence[Sighting]) -> dict:
        cfg = self.config
        self.frame += 1
        # greedy matching, best overlaps first
        pairs = sorted(
            (
                (box_iou(t.box, s.box), ti, si)
                for ti, t in enumerate(self.tracks)
                for si, s in enumerate(sightings)
            ),
            reverse=True,
        )
        used_t, used_s = set(), set()
        for iou, ti, si in pairs:
            if iou < cfg.min_iou or ti in used_t or si in used_s:
                continue
            used_t.add(ti)
            used_s.add(si)
            self._see(self.tracks[ti], sightings[si])
        for si, s in enumerate(sightings):
            if si not in used_s:
                t = Track(self._next_id, s.box, self.frame, self.frame)
                self._next_id += 1
                self.tracks.append(t)
                self._see(t, s)
        confirmed_now = []
        for t in self.tracks:
            if t.state == STABILISING:
                cid, n = t.leader()
                named = sum(v is not None for v in t.votes)
                if cid is not None and n >= cfg.confirm_votes and n >= cfg.min_share * max(named, 1):
                    t.state, t.card_id = CONFIRMED, cid
                    confirmed_now.append(t)
        alive = [t for t in self.tracks if self.frame - t.last_frame <= cfg.max_missing]
        if self.keep_history:  # only confirmed visits are ever reported
            self.ended += [t for t in self.tracks if t not in alive and t.state == CONFIRMED]
        self.tracks = alive
        visible = [t for t in self.tracks if t.last_frame == self.frame]
        scene = (
            NO_CARD
            if not visible
            else CONFIRMED
            if any(t.state == CONFIRMED for t in visible)
            else STABILISING
        )
        return {
            "frame": self.frame,
            "state": scene,
            "tracks": [t.to_dict() for t in visible],
            "confirmed": [self._event(t) for t in confirmed_now],
        }

    def _see(self, t: Track, s: Sighting) -> None:
        t.box, t.last_frame = s.box, self.frame
        t.frames.append(self.frame)
        t.votes.append(s.card_id)
        while len(t.votes) > self.config.window:
            t.votes.popleft()
        if s.card_id is not None and s.info:
            t.info = s.info

    def _event(self, t: Track) -> dict:
        return {"track_id": t.track_id, "card_id": t.card_id, "frame": self.frame, "info": t.info}

    def visits(self) -> list[dict]:
        """Every confirmed visit so far (ended or not): card id, first and last frame, frames seen."""
        out = []
        for t in sorted(self.ended + self.tracks, key=lambda t: t.first_frame):
            if t.state == CONFIRMED:
                out.append(
                    {
                        "track_id": t.track_id,
                        "card_id": t.card_id,
                        "first_frame": t.first_frame,
                        "last_frame": t.last_frame,
                        "frames": list(t.frames),
                    }
                )
        return out
