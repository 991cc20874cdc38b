"""What one crop's decision is made of: the settings (:class:`MatchConfig`), the query
(:class:`Query`: its embedding, features, hash similarities and the verifications made so far)
and what a refinement step reads of the matcher (:class:`Matching`). The refinement steps and the
matcher both import this module, never each other's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from cardid.db.verify import Features, Verification
from cardid.errors import CardIDError

if TYPE_CHECKING:
    from cardid.db.art import ArtRelations
    from cardid.db.store import CardDB
    from cardid.decision.decide import Calibration
    from cardid.decision.printing import PrintingModel


@dataclass(frozen=True)
class MatchConfig:
    shortlist: int = 16  # embedding top-k
    hash_shortlist: int = 4  # pHash top-k joined to it
    verify: bool = True  # geometric verification (needs DB features)
    # Verify in rounds, best prior first; stop once one card is clearly verified (its same-art
    # siblings are then verified too, so reprints still tie). Unknown cards verify the whole list.
    early_stop: bool = True
    first_round: int = 4
    round_size: int = 4
    stop_inliers: int = 60
    stop_lead: float = 0.3  # inlier_lead(best, next): (sqrt(best inliers) - sqrt(next)) / 10
    # Read the collector number (OCR) where the printing is in doubt: an ambiguous set, or a match
    # with another printing of the same name in its shortlist or sharing its art. Off, or without
    # Tesseract: not read.
    read_numbers: bool = True
    #: how the printing is decided once the card is known: "model" (one calibrated probability per
    #: printing, :mod:`cardid.decision.printing`), "rules" (printings → number → strip margin) or
    #: "auto": the model where it was fitted on real photos (or one is given), else the rules. A
    #: model fitted on simulated views alone is overconfident on real photos (photos-dev, held-out
    #: folds: 2.2 % wrong printing against the rules' 0.8 % with the frozen Lite0; 13.6 % with the
    #: distilled student, whose embedding tells simulated reprints apart perfectly)
    printing: str = "auto"

    def __post_init__(self) -> None:
        if self.printing not in ("auto", "model", "rules"):
            raise CardIDError(
                f"MatchConfig.printing must be 'auto', 'model' or 'rules', got {self.printing!r}"
            )


@dataclass
class Query:
    embedding: np.ndarray
    features: Features | None
    hash_sims: np.ndarray  # vs every DB row
    cache: dict = field(default_factory=dict)  # row → Verification
    image: np.ndarray | None = None  # the crop at full resolution (the collector number is read off it)
    #: the embedding before the query adapter (None: no adapter): the printing is weighed on it, so
    #: an adapter fitted on photos of some printings cannot tilt the choice between printings
    raw_embedding: np.ndarray | None = None
    #: row → Verification made earlier for the same crop (another adapter's pass): looked up
    #: instead of matching again, never counted as verified by this query until it asks
    known: dict = field(default_factory=dict)

    def seen(self) -> dict:
        """Every verification made for this crop so far (for a later query of the same crop)."""
        return {**self.known, **self.cache}


class Matching(Protocol):
    """What a refinement step (:mod:`cardid.decision.refine`) reads of the matcher deciding."""

    db: CardDB
    config: MatchConfig
    calibration: Calibration
    art: ArtRelations
    printing_model: PrintingModel | None
    reader: Callable | None

    def verify(self, q: Query, row: int) -> Verification: ...
