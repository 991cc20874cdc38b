"""``cardid eval photos``: whole real photos → decisions, as a user would get them.

The gallery is the real scans; the DB is built with the model under test and calibrated on
*simulated* views only. Each photo of ``photos-dev.csv`` (one card per photo, not cropped: raw
cards, sleeves, top-loaders, slabs, front+back listings) goes through the finder, rectification,
embedding, verification and the decision, exactly as `cardid recognize` runs them; the dev crops
(``queries-dev.csv``) go through the same path. Per photo the outcome is the best match in it:

- ``correct``: the true card is named (a `match`);
- ``wrong``: some other card is named (the error that matters: a confident wrong name);
- ``ambiguous``: the truth is in an ambiguous set (`ambiguous_other`: it is not);
- ``unknown``: cards were found, none named; ``no_card``: nothing found and the fallback named nothing.

Reported: Recall@1 end to end, the wrong-match rate at the operating point, the `no_card` rate,
how often the whole-image fallback was needed, ms per photo, a breakdown by the CSV's notes,
how the simulated-view thresholds transfer (precision and recall of the fused score at the
calibrated threshold, and the threshold the real photos would need), and an HTML page with every
failure beside its true card.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cardid.data.photoset import PhotoSet, load_photo_set
from cardid.db.adapt import widest_card
from cardid.db.match import MatchConfig
from cardid.errors import CardIDError
from cardid.eval.real import _img_tag, build_real_db
from cardid.io import load_rgb, write_bytes_atomic, write_json_atomic
from cardid.recognize import Recognizer, annotate, make_detector

OUTCOMES = ("correct", "wrong", "ambiguous", "ambiguous_other", "unknown", "no_card")


def load_photo_rows(csv_path: Path, limit: int | None = None, seed: int = 0) -> list[dict]:
    """Rows ``path, card_id, notes`` of a labelled photo list (:func:`cardid.data.photoset.load_photo_set`,
    its checks included); ``limit``: a fixed random sample."""
    return load_photo_set(csv_path).sample(limit, seed).rows()


def note_groups(notes: str) -> list[str]:
    """The breakdown groups of a photo, from the CSV's free-text notes."""
    n = (notes or "").lower()
    groups = [
        g
        for g, key in (
            ("non-English", "non-english"),
            ("landscape front+back", "landscape"),
            ("basic-energy art", "basic-energy"),
        )
        if key in n
    ]
    return groups or ["plain"]


def photo_outcome(result: dict, truth: str) -> tuple[str, dict | None]:
    """(outcome, the card record that decided it) for one photo of one card."""
    cards = result["cards"]
    matches = [c for c in cards if c["decision"] == "match"]
    if any(c["card"]["card_id"] != truth for c in matches):
        wrong = max((c for c in matches if c["card"]["card_id"] != truth), key=lambda c: c["score"])
        return "wrong", wrong
    if matches:
        return "correct", max(matches, key=lambda c: c["score"])
    amb = [c for c in cards if c["decision"] == "ambiguous"]
    if amb:
        hit = [c for c in amb if truth in {x["card_id"] for x in c["ambiguous_between"]}]
        return ("ambiguous", hit[0]) if hit else ("ambiguous_other", amb[0])
    if result["no_card"]:
        return "no_card", cards[0] if cards else None
    return "unknown", max(cards, key=lambda c: c["score"]) if cards else None


def _top1(result: dict) -> str | None:
    """The threshold-free answer: the top candidate of the card with the best fused score."""
    cards = [c for c in result["cards"] if c["top"]]
    if not cards:
        return None
    return max(cards, key=lambda c: c["top"][0]["score"])["top"][0]["card_id"]


def evaluate_photo_set(
    rec: Recognizer, rows: list[dict], progress: Callable[[int], None] | None = None
) -> list[dict]:
    per = []
    for r in rows:
        res = rec.timed(load_rgb(r["path"])).to_json()
        outcome, card = photo_outcome(res, r["card_id"])
        per.append(
            {
                "file": r["path"],
                "card_id": r["card_id"],
                "notes": r.get("notes", ""),
                "groups": note_groups(r.get("notes", "")),
                "outcome": outcome,
                "top1": _top1(res),
                "found": len([c for c in res["cards"] if not c.get("fallback")]),
                "fallback": next((c["fallback_reason"] for c in res["cards"] if c.get("fallback")), None),
                "ms": res["ms"],
                "score": card["score"] if card else None,
                "named": (card["card"] or {}).get("card_id") if card else None,
                "cards": [
                    {k: v for k, v in c.items() if k != "top"} | {"top": c["top"][:3]} for c in res["cards"]
                ],
            }
        )
        if progress:
            progress(1)
    return per


def summarise(per: list[dict]) -> dict:
    n = len(per)
    counts = {o: sum(p["outcome"] == o for p in per) for o in OUTCOMES}
    ms = [p["ms"] for p in per]
    return {
        "photos": n,
        "recall@1": counts["correct"] / n if n else 0.0,
        "top1_no_threshold": sum(p["top1"] == p["card_id"] for p in per) / n if n else 0.0,
        "wrong_rate": counts["wrong"] / n if n else 0.0,
        "no_card_rate": counts["no_card"] / n if n else 0.0,
        "finder_missed_rate": sum(p["found"] == 0 for p in per) / n if n else 0.0,
        "fallback_rate": sum(bool(p["fallback"]) for p in per) / n if n else 0.0,
        "fallback_reasons": {
            r: sum(p["fallback"] == r for p in per) for r in ("nothing_found", "nothing_recognised")
        },
        "outcomes": counts,
        "ms_p50": float(np.median(ms)) if ms else None,
        "ms_mean": float(np.mean(ms)) if ms else None,
        "ms_p90": float(np.percentile(ms, 90)) if ms else None,
    }


#: Crop-width bands (px of the card as found in the photo) for the printing split.
WIDTH_BANDS = ((0, 180, "<180"), (180, 260, "180-260"), (260, 10**9, ">260"))


def card_width(p: dict) -> float | None:
    """Width in pixels of the biggest card found in a photo's record (mean of its top and bottom edges)."""
    widest = widest_card(p)
    return widest[1] if widest else None


def printing_split(per: list[dict], name_of: Callable[[str], str | None]) -> dict:
    """The card and its printing, counted apart: ``card_named`` (the truth's card, any printing:
    right, a wrong printing of it, or an ambiguous set holding the truth), ``exact_printing``,
    ``wrong_printing`` (another printing of the same card named), ``wrong_card``,
    ``ambiguous_with_truth``; each as a share of the photos, overall and by crop width."""

    def split(ps: list[dict]) -> dict:
        n = len(ps)
        wrong_printing = sum(
            p["outcome"] == "wrong"
            and p["named"] is not None
            and name_of(p["named"]) == name_of(p["card_id"])
            for p in ps
        )
        counts = {
            "exact_printing": sum(p["outcome"] == "correct" for p in ps),
            "wrong_printing": wrong_printing,
            "wrong_card": sum(p["outcome"] == "wrong" for p in ps) - wrong_printing,
            "ambiguous_with_truth": sum(p["outcome"] == "ambiguous" for p in ps),
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


def fold_figures(per: list[dict], folds, name_of: Callable[[str], str | None]) -> dict:
    """Each held-out fold's figures (its cards only) and their mean and spread across folds."""
    keys = ("exact_printing", "card_named", "wrong_printing", "wrong_card", "ambiguous_with_truth")
    rows = []
    for i in range(folds.k):
        held = set(folds.held_out(i))
        ps = [p for p in per if p["card_id"] in held]
        s = printing_split(ps, name_of)
        rows.append({"fold": i, "cards": len(held), **{k: s[k] for k in ("photos", *keys)}})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    sd = {k: float(np.std([r[k] for r in rows], ddof=1)) for k in keys}
    return {"split": folds.to_dict(), "per_fold": rows, "mean": mean, "sd": sd}


#: Strip margins tried when one is fitted on real photos (``fit_strip_margin``).
STRIP_MARGINS = tuple(round(0.05 * i, 2) for i in range(1, 13))


def redecide_strip(p: dict, margin: float) -> str:
    """A photo's outcome had the strip check named a printing only with a lead of ``margin``:
    from the strip scores its record keeps (the set's cards within the top three)."""
    cards = []
    for c in p["cards"]:
        c = dict(c)
        scored = {
            x["card_id"]: x
            for x in [*(c.get("ambiguous_between") or []), c.get("card") or {}, *c.get("top", [])]
            if x.get("strip") is not None
        }
        strip_decided = c.get("resolved_by") == "strip" or (c["decision"] == "ambiguous" and scored)
        if strip_decided and scored:
            best = max(scored.values(), key=lambda x: x["strip"])
            if best["strip"] >= margin:
                c.update(decision="match", card=best, ambiguous_between=[])
            else:
                c.update(decision="ambiguous", card=None, ambiguous_between=list(scored.values()))
        cards.append(c)
    return photo_outcome({"cards": cards, "no_card": p["outcome"] == "no_card"}, p["card_id"])[0]


def fit_strip_margin(per: list[dict], folds, max_wrong: float = 0.01, margins=STRIP_MARGINS) -> dict:
    """The strip margin fitted on real photos, card-disjointly: for each fold, the margin that
    names the most photos right on the *other* folds' cards with at most ``max_wrong`` of them
    wrong; measured on the fold's own cards. Returns each fold's margin and held-out figures."""
    from cardid.eval.folds import require_disjoint

    outcomes = {m: [redecide_strip(p, m) for p in per] for m in margins}

    def rates(m: float, idx: list[int]) -> tuple[float, float, float]:
        o = [outcomes[m][j] for j in idx]
        n = max(len(o), 1)
        return o.count("correct") / n, o.count("wrong") / n, o.count("ambiguous") / n

    rows = []
    for i in range(folds.k):
        held = set(folds.held_out(i))
        fit_idx = [j for j, p in enumerate(per) if p["card_id"] not in held]
        test_idx = [j for j, p in enumerate(per) if p["card_id"] in held]
        require_disjoint(
            {per[j]["card_id"] for j in fit_idx}, {per[j]["card_id"] for j in test_idx}, f"fold {i}"
        )
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


def redecide_printing(p: dict, model, p_min: float | None = None) -> dict:
    """A photo's record had the printing been decided by ``model`` (at ``p_min``, else its own): from
    the printing sets its card records keep (each printing's evidence). Returns the record with its
    ``outcome`` and ``named`` card replaced."""
    from cardid.printing.model import PrintingSet

    cards = []
    for c in p["cards"]:
        if c.get("printing"):
            call = model.decide(PrintingSet.from_dict(c["printing"]), p_min)
            if call.card_id is not None:
                c = {**c, "decision": "match", "card": {"card_id": call.card_id}, "ambiguous_between": []}
            else:
                amb = [{"card_id": x} for x in call.plausible]
                c = {**c, "decision": "ambiguous", "card": None, "ambiguous_between": amb}
        cards.append(c)
    outcome, card = photo_outcome({"cards": cards, "no_card": p["outcome"] == "no_card"}, p["card_id"])
    named = (card.get("card") or {}).get("card_id") if card else None
    return {**p, "cards": cards, "outcome": outcome, "named": named}


def real_printing_sets(per: list[dict]) -> list:
    """The printing sets of labelled photos' card records, each with the photo's card as its truth."""
    from cardid.printing.model import PrintingSet

    return [
        PrintingSet.from_dict(c["printing"], truth=p["card_id"])
        for p in per
        for c in p["cards"]
        if c.get("printing")
    ]


def fit_printing_folds(
    per: list[dict], folds, simulated: list, name_of: Callable[[str], str | None], max_wrong: float = 0.01
) -> dict:
    """The printing model fitted card-disjointly: for each fold, its weights on the ``simulated``
    printing sets plus the *other* folds' real photos, and its ``p_min`` the one naming the most of
    those photos right with at most ``max_wrong`` of them wrong (a card or a printing); measured on
    the fold's own cards. Returns each fold's model and held-out figures, and their mean and spread."""
    from cardid.eval.folds import require_disjoint
    from cardid.printing.model import P_MINS, PrintingModel, fit_weights

    held_out_records, models = [], []
    for i in range(folds.k):
        held = set(folds.held_out(i))
        fit = [p for p in per if p["card_id"] not in held]
        test = [p for p in per if p["card_id"] in held]
        require_disjoint({p["card_id"] for p in fit}, {p["card_id"] for p in test}, f"fold {i}")
        real = real_printing_sets(fit)
        # the real photos (fewer) weigh as much as the simulated views together
        weights = [1.0] * len(simulated) + [max(len(simulated), 1) / max(len(real), 1)] * len(real)
        try:
            model = PrintingModel([float(w) for w in fit_weights([*simulated, *real], set_weights=weights)])
        except CardIDError:  # nothing to fit on (no printing set holds its truth): the hand-set model
            model = PrintingModel()
        best = None
        for p_min in P_MINS:
            o = [redecide_printing(p, model, p_min)["outcome"] for p in fit]
            right, wrong = o.count("correct"), o.count("wrong")
            if wrong <= max_wrong * len(fit) and (best is None or right > best[1]):
                best = (p_min, right)
        model.p_min = best[0] if best else max(P_MINS)
        model.fitted = {"simulated_sets": len(simulated), "real_sets": len(real), "real_photos": len(fit)}
        models.append({"fold": i, **model.to_dict()})
        held_out_records += [redecide_printing(p, model) for p in test]
    return {"max_wrong": max_wrong, "models": models, **fold_figures(held_out_records, folds, name_of)}


def adapted_by_fold(rec, db, emb, per, photo_set, split, simulated, name_of, printing, progress=None) -> dict:
    """photos-dev recognised again, each fold's photos with a query adapter fitted on the other
    folds' photos (their first-pass corners; λ on their own inner folds): its figures, and the
    printing model refitted on these records card-disjointly as before."""
    from cardid.db.adapt import fit_db_adapter, photo_pairs

    q, rows, used = photo_pairs(db, emb, per)
    fold_of = np.array([split.fold_of[per[i]["card_id"]] for i in used])
    adapted, fits = [], []
    try:
        for i in range(split.k):
            a, stats = fit_db_adapter(db, q[fold_of != i], rows[fold_of != i], fold_of[fold_of != i])
            fits.append({"fold": i, **stats})
            rec.matcher.adapter = a
            held = set(split.held_out(i))
            adapted += evaluate_photo_set(
                rec, [r for r in photo_set.rows() if r["card_id"] in held], progress
            )
    finally:
        rec.matcher.adapter = db.adapter
    out = {
        "fits": fits,
        **summarise(adapted),
        "printing": printing_split(adapted, name_of),
        "folds": fold_figures(adapted, split, name_of),
        "per_photo": adapted,
    }
    if printing == "model":
        out["folds"]["printing_model_fitted"] = fit_printing_folds(adapted, split, simulated, name_of)
    return out


def threshold_transfer(per: list[dict], calibrated: float) -> dict:
    """How the threshold fitted on simulated views does on the real photos: precision/recall of
    "the best card's fused score ≥ t means its top candidate is right", at the calibrated t and at
    the t the real photos would need for 99 % precision."""
    pairs = []
    for p in per:
        cards = [c for c in p["cards"] if c["top"]]
        if cards:
            best = max(cards, key=lambda c: c["top"][0]["score"])
            pairs.append((best["top"][0]["score"], best["top"][0]["card_id"] == p["card_id"]))
    if not pairs:
        return {}
    s = np.array([x for x, _ in pairs])
    ok = np.array([y for _, y in pairs])

    def at(t: float) -> dict:
        acc = s >= t
        return {
            "threshold": round(float(t), 4),
            "precision": float(ok[acc].mean()) if acc.any() else 1.0,
            "recall": float((ok & acc).sum() / len(per)),
        }

    order = np.argsort(-s)
    prec = np.cumsum(ok[order]) / np.arange(1, len(order) + 1)
    good = np.flatnonzero(prec >= 0.99)
    t99 = float(s[order][good[-1]]) if len(good) else float(s.max())
    return {"calibrated": at(calibrated), "real_99_precision": at(t99)}


def evaluate_photos(
    realdata: str | Path,
    model: str | Path,
    out: str | Path,
    detector: str = "classical",
    calib_cards: int = 300,
    limit: int | None = None,
    fallback: bool = True,
    conf: float = 0.25,
    progress: Callable[[int], None] | None = None,
    folds: int | None = None,
    fold_seed: int = 0,
    printing: str = "model",
    adapter: bool = False,
) -> dict:
    """``folds``: also report photos-dev in that many card-disjoint folds (every printing of a card
    name in one fold, :mod:`cardid.eval.folds`): each fold's figures on its own cards, and their
    spread, as decided with what simulated views fitted; then the printing model refitted on the
    simulated sets plus the other folds' real photos, measured on each fold's own cards
    (``printing="model"``), or the strip margin fitted so (``printing="rules"``: the printing decided
    by the rules the model replaced, to compare the two on the same folds). ``adapter`` (with
    ``folds``): photos-dev again, each fold's photos with a query adapter fitted on the other folds'
    photos (:mod:`cardid.db.adapt`; λ on their own inner folds), and the printing model refitted on
    those records likewise."""
    from cardid.catalog.records import name_key
    from cardid.eval.folds import card_folds

    realdata, out = Path(realdata), Path(out)
    config = MatchConfig(printing=printing)  # a bad value said before any work
    photos = load_photo_set(realdata / "photos-dev.csv")
    dev = load_photo_set(realdata / "queries-dev.csv") if (realdata / "queries-dev.csv").is_file() else None
    if adapter and not folds:
        raise CardIDError("an adapter is fitted on other folds' photos: give --folds with --adapter")
    if folds:
        card_folds(photos, folds, fold_seed)  # too few cards: said before the DB is built, not after
    catalog, emb, db, cals, build_s, simulated = build_real_db(realdata, model, out, calib_cards)
    for s_ in (photos, dev):
        if s_ is not None:
            s_.require_cards(catalog, f"the gallery of {realdata}")

    def name_of(cid: str) -> str | None:
        return name_key(catalog[cid]) if cid in catalog else None

    split = card_folds(photos, folds, fold_seed, group=name_of) if folds else None
    rec = Recognizer.open(emb, db, make_detector(detector, conf), config, fallback=fallback)
    sets: dict[str, tuple[Recognizer, PhotoSet]] = {"photos-dev": (rec, photos.sample(limit))}
    if dev is not None:  # crops: recognised as crops (no finder)
        sets["queries-dev"] = (Recognizer(rec.matcher), dev)
    report: dict = {
        "model": str(model),
        "model_identity": emb.identity,
        "detector": str(detector),
        "fallback": fallback,
        "gallery": len(db),
        "db_build_s": round(build_s, 1),
        "calibration": {k: v.to_dict() for k, v in cals.items()},
        "printing": printing,
        # the simulated printing sets the DB's printing model was fitted on (and the folds' models)
        "printing_sets_simulated": [{"truth": x.truth, **x.to_dict()} for x in simulated],
        "sets": {},
    }
    threshold = rec.matcher.calibration.threshold
    for name, (recognizer, photo_set) in sets.items():
        per = evaluate_photo_set(recognizer, photo_set.rows(), progress)
        groups = sorted({g for p in per for g in p["groups"]})
        report["sets"][name] = {
            **summarise(per),
            "printing": printing_split(per, name_of),
            "by_notes": {g: summarise([p for p in per if g in p["groups"]]) for g in groups},
            "thresholds": threshold_transfer(per, threshold),
            "per_photo": per,
        }
        if split is not None and name == "photos-dev":
            report["sets"][name]["folds"] = fold_figures(per, split, name_of)
            if printing == "rules":
                report["sets"][name]["folds"]["strip_margin_fitted"] = fit_strip_margin(per, split)
            else:
                report["sets"][name]["folds"]["printing_model_fitted"] = fit_printing_folds(
                    per, split, simulated, name_of
                )
            if adapter:
                report["sets"][name]["adapter"] = adapted_by_fold(
                    recognizer, db, emb, per, photo_set, split, simulated, name_of, printing, progress
                )
    write_json_atomic(out / "report.json", report)
    write_bytes_atomic(out / "report.html", render_html(report, catalog).encode())
    return report


def format_report(report: dict) -> str:
    lines = [
        f"{'set':<12}{'photos':>7}{'R@1':>7}{'top1':>7}{'wrong':>7}{'no_card':>8}{'finder0':>8}"
        f"{'fallbk':>7}{'p50 ms':>8}"
    ]

    def row(name, s):
        return (
            f"{name:<12}{s['photos']:>7}{s['recall@1']:>7.3f}{s['top1_no_threshold']:>7.3f}"
            f"{s['wrong_rate']:>7.3f}{s['no_card_rate']:>8.3f}{s['finder_missed_rate']:>8.3f}"
            f"{s['fallback_rate']:>7.3f}{s['ms_p50']:>8.0f}"
        )

    for name, s in report["sets"].items():
        lines.append(row(name, s))
        for g, sg in s["by_notes"].items():
            lines.append(row(f"  {g[:10]}", sg))
    for name, s in report["sets"].items():
        pr = s.get("printing")
        if pr:
            lines.append(f"{name}: {_printing_figures(pr)}")
        f = s.get("folds")
        if f:
            lines.append(
                f"{name}, {f['split']['k']} card-disjoint folds (mean ± sd): "
                + _printing_figures(f["mean"], f["sd"])
            )
            lines += _refitted(f"{name}, printing model", f)
            fit = f.get("strip_margin_fitted")
            if fit:
                lines.append(
                    f"{name}, strip margin fitted on the other folds' cards (wrong ≤ {fit['max_wrong']:.1%}): "
                    f"margins {[r['margin'] for r in fit['per_fold']]}, held out: exact "
                    f"{fit['pooled']['exact']:.3f}, wrong {fit['pooled']['wrong']:.3f}"
                )
        ad = s.get("adapter")
        if ad:
            lines.append(
                f"{name}, query adapter fitted on the other folds' photos (λ {[f['lam'] for f in ad['fits']]}), "
                f"R@1 {ad['recall@1']:.3f}, wrong {ad['wrong_rate']:.3f}; held out (mean ± sd): "
                + _printing_figures(ad["folds"]["mean"], ad["folds"]["sd"])
            )
            lines += _refitted(f"{name}, adapter + printing model", ad["folds"])
        t = s.get("thresholds") or {}
        if t:
            c, r = t["calibrated"], t["real_99_precision"]
            lines.append(
                f"{name}: calibrated threshold {c['threshold']:.3f} → precision {c['precision']:.3f}, "
                f"recall {c['recall']:.3f}; real photos need {r['threshold']:.3f} for 99 % precision "
                f"(recall {r['recall']:.3f})"
            )
    return "\n".join(lines)


def _refitted(what: str, folds: dict) -> list[str]:
    """The line for a printing model refitted per fold (simulated views + the other folds' cards)."""
    pm = folds.get("printing_model_fitted")
    if not pm:
        return []
    return [
        f"{what} fitted on simulated views + the other folds' cards (p_min "
        f"{[m['p_min'] for m in pm['models']]}), held out (mean ± sd): "
        + _printing_figures(pm["mean"], pm["sd"])
    ]


def _printing_figures(figures: dict, sd: dict | None = None) -> str:
    """The card/printing split in words, with its spread across folds when ``sd`` is given."""
    keys = ("card_named", "exact_printing", "ambiguous_with_truth", "wrong_printing", "wrong_card")
    return ", ".join(
        f"{k.replace('_', ' ')} {figures[k]:.3f}" + (f" ± {sd[k]:.3f}" if sd else "") for k in keys
    )


def render_html(report: dict, catalog) -> str:
    """Every failure: the annotated photo beside the card it was named as and its true card."""
    color = {"correct": "#2a2", "wrong": "#c22", "ambiguous": "#e90", "ambiguous_other": "#e90"}

    def scan(cid, label, frame="#ccc"):
        if not cid or cid not in catalog:
            return f'<div class="c" style="border-color:{frame}">{html.escape(label)}<br>—</div>'
        return (
            f'<div class="c" style="border-color:{frame}">{_img_tag(catalog.load_image(cid))}<br>'
            f"{html.escape(label)}<br><b>{html.escape(cid)}</b><br>{html.escape(catalog[cid].name)}</div>"
        )

    def photo_row(p):
        im = load_rgb(p["file"])
        res = {"no_card": p["outcome"] == "no_card", "cards": p["cards"]}
        try:
            shown = annotate(im, res)
        except Exception:  # a record without corners: show the photo as it is
            shown = im
        frame = color.get(p["outcome"], "#888")
        how = f"{p['found']} found" + (f", whole image ({p['fallback']})" if p["fallback"] else "")
        return (
            f'<div class="row"><div class="c" style="border-color:{frame}">{_img_tag(shown, 200)}<br>'
            f"<b>{p['outcome']}</b> · {how} · {p['ms']:.0f} ms<br>{html.escape(Path(p['file']).name)}"
            f"<br><small>{html.escape(p['notes'])}</small></div>"
            f"{scan(p['named'], 'named', frame)}{scan(p['top1'], 'top-1 candidate')}"
            f"{scan(p['card_id'], 'truth', '#36c')}</div>"
        )

    body = [
        '<!doctype html><html><head><meta charset="utf-8"><title>cardid eval photos</title>',
        "<style>body{font-family:sans-serif;margin:20px} .row{display:flex;gap:8px;margin:10px 0}",
        ".c{border:4px solid #ccc;padding:4px;font-size:12px;text-align:center;max-width:220px}",
        "pre{background:#f4f4f4;padding:10px}</style></head><body>",
        f"<h1>Whole real photos → {report['gallery']} gallery scans</h1>",
        f"<p>model {html.escape(report['model'])} ({report['model_identity']}), finder "
        f"{html.escape(report['detector'])}; thresholds calibrated on simulated views only. "
        "Frame: green correct, red wrong, orange ambiguous, grey unknown / no card; blue = truth.</p>",
        f"<pre>{html.escape(format_report(report))}</pre>",
    ]
    for name, s in report["sets"].items():
        fails = [p for p in s["per_photo"] if p["outcome"] != "correct"]
        fails.sort(key=lambda p: OUTCOMES.index(p["outcome"]))
        body.append(f"<h2>{html.escape(name)}: {len(fails)} of {s['photos']} not named correctly</h2>")
        body += [photo_row(p) for p in fails]
    body.append("</body></html>")
    return "\n".join(body)
