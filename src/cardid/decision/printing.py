"""Which printing of a known card: one calibrated probability per printing, from all the evidence.

Once the card is known (a match, or a set of cards tied with it), its printings in sight — the
match, the same-name cards the shortlist verified, same-art printings verified on purpose — form a
:class:`PrintingSet`. Each member carries its evidence: embedding cosine, verified inliers, the
bottom strip's lead (compared at the crop's own resolution, and only between printings that share
their art), and what the collector number read off the crop says of it. A conditional logit turns
the members' features into probabilities that sum to one:

    p(j) = softmax_j ( w · x_j )

where ``x_j`` holds each cue *relative to the other members* (the card is known; only the
differences between its printings say which one it is), and the embedding's and the strip's cues
appear twice, once scaled by the crop's resolution: the weights learn how much a cue is worth on a
small, soft crop (``r = min(width, 400) / 400``), so confidence falls with resolution. A strip
only ever *demotes* a printing against the best strip of its same-art group: a same-name card whose
art differs is decided by the embedding and inliers (its art), never by a strip.

The weights are fitted (:mod:`cardid.fit.printing`) on printing sets from simulated views rendered
at real photos' sizes and, where labelled real photos exist, on the other folds' real photos
(card-disjoint: :mod:`cardid.fit.folds`); ``p_min`` is the probability a printing needs to be
named, chosen by one rule for a wrong rate. Below it the decision is ``ambiguous``,
with every printing still plausible. The features hold no set identity, so no fit can learn
"prefer base1" from photos that show only base1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from cardid.decision.decide import INLIER_SCALE
from cardid.errors import CardIDError

FEATURES = ("emb_lead", "emb_lead_res", "inlier_lead", "strip", "strip_res", "number")
#: crop width (px) from which resolution counts fully
FULL_WIDTH = 400.0
#: a hand-set model for DBs nobody fitted one for: inliers and the number first, the strip trusted
#: more on large crops (a 0.25 strip lead at full resolution: p 0.99 of two)
DEFAULT_WEIGHTS = (1.0, 1.0, 3.0, 8.0, 12.0, 4.0)
#: the features of each cue (:meth:`PrintingModel.leading_cue`)
CUES = {
    "art": ("emb_lead", "emb_lead_res", "inlier_lead"),
    "strip": ("strip", "strip_res"),
    "number": ("number",),
}
#: an ambiguous set keeps the printings at least this likely
KEEP = 0.02


@dataclass(frozen=True)
class Evidence:
    """What one crop shows of one printing of its card."""

    card_id: str
    cos: float  # embedding cosine
    inliers: int = 0  # verified inliers (0: not verified)
    #: bottom-strip lead over the other printings sharing its art (:func:`cardid.db.verify.strip_scores`);
    #: None: not compared (its art differs from the leader's, or no strips differ)
    strip: float | None = None
    #: +1: the number read agrees with it; +0.5: agrees but for a total one off; -1: legible, and
    #: it agrees with another member but not this one; 0: nothing legible, or nobody agrees
    number: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cos"] = round(self.cos, 5)
        if self.strip is not None:
            d["strip"] = round(self.strip, 5)
        return d


@dataclass(frozen=True)
class PrintingSet:
    """The printings of one card in sight of one crop, with the crop's width in pixels."""

    members: tuple[Evidence, ...]
    width: float
    truth: str | None = None  # the true card id, when fitting

    def __post_init__(self) -> None:
        if len({m.card_id for m in self.members}) != len(self.members):
            raise CardIDError(f"a printing set lists a card twice: {[m.card_id for m in self.members]}")

    def to_dict(self) -> dict:
        return {"width": round(float(self.width), 1), "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, d: dict, truth: str | None = None) -> PrintingSet:
        try:
            keys = {f.name for f in fields(Evidence)}  # a record's other keys (its "p") are not evidence
            members = tuple(Evidence(**{k: v for k, v in m.items() if k in keys}) for m in d["members"])
            return cls(members, float(d["width"]), truth)
        except (KeyError, TypeError, ValueError) as e:
            raise CardIDError(f"malformed printing set record ({e}): {d!r:.200}") from e

    def features(self) -> np.ndarray:
        """``(members, len(FEATURES))``: each cue relative to the other members."""
        n = len(self.members)
        r = min(max(float(self.width), 0.0), FULL_WIDTH) / FULL_WIDTH
        cos = np.array([m.cos for m in self.members], np.float64)
        roots = np.sqrt(np.array([max(m.inliers, 0) for m in self.members], np.float64))
        emb = 10.0 * (cos - _best_other(cos))
        inl = (roots - _best_other(roots)) / INLIER_SCALE
        strip = np.zeros(n)
        compared = [i for i, m in enumerate(self.members) if m.strip is not None]
        if len(compared) >= 2:  # a strip demotes within its same-art group; never promotes across art
            s = np.array([self.members[i].strip for i in compared])
            strip[compared] = s - s.max()
        num = np.array([m.number for m in self.members], np.float64)
        return np.stack([emb, emb * r, inl, strip, strip * r, num], axis=1)


def save_printing_sets(path, sets: Sequence[PrintingSet]) -> None:
    """Printing sets with their truth at full precision (``to_dict`` rounds, for reports): what a
    later fit reads back to fit exactly what it would have fitted on the sets themselves."""
    from cardid.io import write_json_atomic

    rows = [
        {"truth": s.truth, "width": float(s.width), "members": [asdict(m) for m in s.members]} for s in sets
    ]
    write_json_atomic(path, rows)


def load_printing_sets(path) -> list[PrintingSet]:
    """The sets :func:`save_printing_sets` wrote; a malformed record is an error naming it."""
    from cardid.io import read_json

    rows = read_json(path, "printing sets")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CardIDError(f"{path}: not a list of printing sets")
    return [PrintingSet.from_dict(r, r.get("truth")) for r in rows]


def _best_other(x: np.ndarray) -> np.ndarray:
    """For each entry, the largest of the others (0 for a set of one)."""
    if len(x) < 2:
        return np.zeros_like(x)
    order = np.argsort(-x, kind="stable")
    out = np.full_like(x, x[order[0]])
    out[order[0]] = x[order[1]]
    return out


@dataclass(frozen=True)
class PrintingCall:
    """The printing decision for one crop: ``card_id`` named with ``probability``, or None (ambiguous
    between ``plausible``, best first)."""

    card_id: str | None
    probability: float
    probabilities: dict[str, float]
    plausible: tuple[str, ...]


@dataclass
class PrintingModel:
    weights: list[float] = field(default_factory=lambda: list(DEFAULT_WEIGHTS))
    p_min: float = 0.9  # the probability a printing needs to be named
    fitted: dict = field(default_factory=dict)  # what it was fitted on (sets, sources, figures)

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise CardIDError(
                f"a printing model has {len(FEATURES)} weights ({', '.join(FEATURES)}), got {len(self.weights)}"
            )
        if not 0.0 < self.p_min <= 1.0 or not all(math.isfinite(w) for w in self.weights):
            raise CardIDError(f"malformed printing model: weights {self.weights}, p_min {self.p_min}")

    def probabilities(self, s: PrintingSet) -> np.ndarray:
        z = s.features() @ np.asarray(self.weights, np.float64)
        z = np.exp(z - z.max())
        return z / z.sum()

    def decide(self, s: PrintingSet, p_min: float | None = None) -> PrintingCall:
        p = self.probabilities(s)
        order = np.argsort(-p, kind="stable")
        ids = [s.members[i].card_id for i in order]
        probs = {s.members[i].card_id: round(float(p[i]), 4) for i in order}
        best = float(p[order[0]])
        if best >= (self.p_min if p_min is None else p_min):
            return PrintingCall(ids[0], best, probs, (ids[0],))
        keep = tuple(c for c, q in zip(ids, p[order], strict=True) if q >= KEEP)
        return PrintingCall(None, best, probs, keep if len(keep) >= 2 else tuple(ids[:2]))

    def leading_cue(self, s: PrintingSet, card_id: str) -> str:
        """What set ``card_id`` apart from the next most likely printing: "art" (embedding and
        inliers), "strip" or "number", whichever added most to its lead."""
        x = s.features()
        ids = [m.card_id for m in s.members]
        i = ids.index(card_id)
        p = self.probabilities(s)
        p[i] = -1.0
        lead = np.asarray(self.weights) * (x[i] - x[int(np.argmax(p))])
        cues = {c: float(sum(lead[FEATURES.index(f)] for f in fs)) for c, fs in CUES.items()}
        return max(cues, key=cues.get)

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> PrintingModel:
        try:
            if list(d.get("features", FEATURES)) != list(FEATURES):
                raise ValueError(f"features {d.get('features')} are not this version's {list(FEATURES)}")
            return cls([float(w) for w in d["weights"]], float(d["p_min"]), dict(d.get("fitted") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise CardIDError(
                f"stored printing model is malformed ({e}); re-run `cardid index calibrate`"
            ) from e
