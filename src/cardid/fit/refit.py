"""What is fitted on real photos, card-disjointly: the printing model and strip margin refitted on
the other folds' photos, the query adapter fitted on them, and the figures split by crop width and
by fold (:mod:`cardid.fit.folds`). Each photo is re-decided from its record, not recognised again,
except with an adapter (the search itself changes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cardid.decision.decide import AMBIGUOUS, MATCH
from cardid.fit.adapter import widest_card
from cardid.fit.outcomes import (
    AMBIGUOUS_TRUTH,
    CORRECT,
    WRONG,
    evaluate_photo_set,
    photo_outcome,
    summarise,
)
from cardid.fit.printing import fit_on_photos, redecide_printing
from cardid.fit.records import PhotoRecord, records_json

#: Crop-width bands (px of the card as found in the photo) for the printing split.
WIDTH_BANDS = ((0, 180, "<180"), (180, 260, "180-260"), (260, 10**9, ">260"))


def card_width(p: PhotoRecord) -> float | None:
    """Width in pixels of the biggest card found in a photo's record (mean of its top and bottom edges)."""
    widest = widest_card(p)
    return widest[1] if widest else None


def printing_split(per: Sequence[PhotoRecord], name_of: Callable[[str], str | None]) -> dict:
    """The card and its printing, counted apart: ``card_named`` (the truth's card, any printing:
    right, a wrong printing of it, or an ambiguous set holding the truth), ``exact_printing``,
    ``wrong_printing`` (another printing of the same card named), ``wrong_card``,
    ``ambiguous_with_truth``; each as a share of the photos, overall and by crop width."""

    def split(ps: list[PhotoRecord]) -> dict:
        n = len(ps)
        wrong_printing = sum(
            p.outcome == WRONG and p.named is not None and name_of(p.named) == name_of(p.card_id) for p in ps
        )
        counts = {
            "exact_printing": sum(p.outcome == CORRECT for p in ps),
            "wrong_printing": wrong_printing,
            "wrong_card": sum(p.outcome == WRONG for p in ps) - wrong_printing,
            "ambiguous_with_truth": sum(p.outcome == AMBIGUOUS_TRUTH for p in ps),
        }
        counts["card_named"] = counts["exact_printing"] + wrong_printing + counts["ambiguous_with_truth"]
        return {"photos": n, **{k: (v / n if n else 0.0) for k, v in counts.items()}}

    widths = [card_width(p) for p in per]
    bands = {
        label: split([p for p, w in zip(per, widths, strict=True) if w is not None and lo <= w < hi])
        for lo, hi, label in WIDTH_BANDS
    }
    bands["no card found"] = split([p for p, w in zip(per, widths, strict=True) if w is None])
    return {**split(per), "by_width": bands}


def fold_figures(per: Sequence[PhotoRecord], folds, name_of: Callable[[str], str | None]) -> dict:
    """Each held-out fold's figures (its cards only) and their mean and spread across folds."""
    keys = ("exact_printing", "card_named", "wrong_printing", "wrong_card", "ambiguous_with_truth")
    rows = []
    for i in range(folds.k):
        held = set(folds.held_out(i))
        ps = [p for p in per if p.card_id in held]
        s = printing_split(ps, name_of)
        rows.append({"fold": i, "cards": len(held), **{k: s[k] for k in ("photos", *keys)}})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    sd = {k: float(np.std([r[k] for r in rows], ddof=1)) for k in keys}
    return {"split": folds.to_dict(), "per_fold": rows, "mean": mean, "sd": sd}


#: Strip margins tried when one is fitted on real photos (``fit_strip_margin``).
STRIP_MARGINS = tuple(round(0.05 * i, 2) for i in range(1, 13))


def redecide_strip(p: PhotoRecord, margin: float) -> str:
    """A photo's outcome had the strip check named a printing only with a lead of ``margin``:
    from the strip scores its record keeps (the set's cards within the top three)."""
    cards = []
    for c in p.cards:
        scored = c.strips()
        strip_decided = c.resolved_by == "strip" or (c.decision == AMBIGUOUS and scored)
        if strip_decided and scored:
            best = max(scored.values(), key=lambda x: x.strip)
            if best.strip >= margin:
                c = c.redecided(MATCH, best)
            else:
                c = c.redecided(AMBIGUOUS, between=list(scored.values()))
        cards.append(c)
    return photo_outcome(cards, p.no_card, p.card_id)[0]


def fit_strip_margin(
    per: Sequence[PhotoRecord], folds, max_wrong: float = 0.01, margins=STRIP_MARGINS
) -> dict:
    """The strip margin fitted on real photos, card-disjointly: for each fold, the margin that
    names the most photos right on the *other* folds' cards with at most ``max_wrong`` of them
    wrong; measured on the fold's own cards. Returns each fold's margin and held-out figures."""
    from cardid.fit.folds import require_disjoint

    outcomes = {m: [redecide_strip(p, m) for p in per] for m in margins}

    def rates(m: float, idx: list[int]) -> tuple[float, float, float]:
        o = [outcomes[m][j] for j in idx]
        n = max(len(o), 1)
        return o.count(CORRECT) / n, o.count(WRONG) / n, o.count(AMBIGUOUS_TRUTH) / n

    rows = []
    for i in range(folds.k):
        held = set(folds.held_out(i))
        fit_idx = [j for j, p in enumerate(per) if p.card_id not in held]
        test_idx = [j for j, p in enumerate(per) if p.card_id in held]
        require_disjoint({per[j].card_id for j in fit_idx}, {per[j].card_id for j in test_idx}, f"fold {i}")
        on_fit = {m: rates(m, fit_idx) for m in margins}
        ok = [m for m in margins if on_fit[m][1] <= max_wrong] or [max(margins)]
        m = max(ok, key=lambda m: (on_fit[m][0], m))
        right, wrong, amb = rates(m, test_idx)
        rows.append(
            {
                "fold": i,
                "margin": m,
                "photos": len(test_idx),
                "exact": right,
                "wrong": wrong,
                "ambiguous": amb,
            }
        )
    w = [r["photos"] for r in rows]
    pooled = {k: float(np.average([r[k] for r in rows], weights=w)) for k in ("exact", "wrong", "ambiguous")}
    return {"max_wrong": max_wrong, "margins_tried": list(margins), "per_fold": rows, "pooled": pooled}


def fit_printing_folds(
    per: Sequence[PhotoRecord],
    folds,
    simulated: list,
    name_of: Callable[[str], str | None],
    max_wrong: float = 0.01,
) -> dict:
    """The printing model fitted card-disjointly: for each fold, its weights on the ``simulated``
    printing sets plus the *other* folds' real photos, and its ``p_min`` the one naming the most of
    those photos right with at most ``max_wrong`` of them wrong (a card or a printing); measured on
    the fold's own cards. Returns each fold's model and held-out figures, and their mean and spread."""
    from cardid.fit.folds import require_disjoint

    held_out_records, models = [], []
    for i in range(folds.k):
        held = set(folds.held_out(i))
        fit = [p for p in per if p.card_id not in held]
        test = [p for p in per if p.card_id in held]
        require_disjoint({p.card_id for p in fit}, {p.card_id for p in test}, f"fold {i}")
        model = fit_on_photos(fit, simulated, max_wrong)
        models.append({"fold": i, **model.to_dict()})
        held_out_records += [redecide_printing(p, model) for p in test]
    return {
        "max_wrong": max_wrong,
        "models": models,
        **fold_figures(held_out_records, folds, name_of),
        "per_photo": records_json(held_out_records),  # each photo as its own fold's model decided it
    }


def adapted_by_fold(
    rec, db, emb, per, photo_set, split, simulated, name_of, printing, progress=None, memos=None
) -> dict:
    """photos-dev recognised again, each fold's photos with a query adapter fitted on the other
    folds' photos (their first-pass corners; λ on their own inner folds): its figures, and the
    printing model refitted on these records card-disjointly as before. ``memos``: the first
    pass's (:func:`~cardid.fit.outcomes.evaluate_photo_set`), so only the decisions are redone."""
    from cardid.fit.adapter import fit_db_adapter, photo_pairs

    q, rows, used = photo_pairs(db, emb, per)
    fold_of = np.array([split.fold_of[per[i].card_id] for i in used])
    adapted, fits = [], []
    for i in range(split.k):
        a, stats = fit_db_adapter(db, q[fold_of != i], rows[fold_of != i], fold_of[fold_of != i])
        fits.append({"fold": i, **stats})
        held = set(split.held_out(i))
        adapted += evaluate_photo_set(
            rec.with_(adapter=a), [r for r in photo_set.rows() if r["card_id"] in held], progress, memos
        )
    out = {
        "fits": fits,
        **summarise(adapted),
        "printing": printing_split(adapted, name_of),
        "folds": fold_figures(adapted, split, name_of),
        "per_photo": records_json(adapted),
    }
    if printing == "model":
        out["folds"]["printing_model_fitted"] = fit_printing_folds(adapted, split, simulated, name_of)
    return out
