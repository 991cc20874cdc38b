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
from cardid.decision.match import MatchConfig
from cardid.decision.printing import save_printing_sets
from cardid.errors import CardIDError
from cardid.eval.real import _img_tag, build_real_db
from cardid.fit.outcomes import CORRECT, NO_CARD, OUTCOMES, evaluate_photo_set, summarise
from cardid.fit.refit import (
    adapted_by_fold,
    fit_printing_folds,
    fit_strip_margin,
    fold_figures,
    printing_split,
)
from cardid.images import load_rgb
from cardid.io import write_bytes_atomic, write_json_atomic
from cardid.recognize import Recognizer, annotate, make_detector

#: the simulated printing sets an evaluation fitted its folds' printing models on (full precision)
SIMULATED_SETS = "printing_sets_simulated.json"


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
    db_dir: str | Path | None = None,
) -> dict:
    """``folds``: also report photos-dev in that many card-disjoint folds (every printing of a card
    name in one fold, :mod:`cardid.fit.folds`): each fold's figures on its own cards, and their
    spread, as decided with what simulated views fitted; then the printing model refitted on the
    simulated sets plus the other folds' real photos, measured on each fold's own cards
    (``printing="model"``), or the strip margin fitted so (``printing="rules"``: the printing decided
    by the rules the model replaced, to compare the two on the same folds). ``adapter`` (with
    ``folds``): photos-dev again, each fold's photos with a query adapter fitted on the other folds'
    photos (:mod:`cardid.fit.adapter`; λ on their own inner folds), and the printing model refitted on
    those records likewise. ``db_dir``: a DB already built with ``model`` and calibrated, evaluated
    as it is (read only) instead of one built and calibrated here."""
    from cardid.catalog.records import name_key
    from cardid.fit.folds import card_folds

    realdata, out = Path(realdata), Path(out)
    config = MatchConfig(printing=printing)  # a bad value said before any work
    photos = load_photo_set(realdata / "photos-dev.csv")
    dev = load_photo_set(realdata / "queries-dev.csv") if (realdata / "queries-dev.csv").is_file() else None
    if adapter and not folds:
        raise CardIDError("an adapter is fitted on other folds' photos: give --folds with --adapter")
    if folds:
        card_folds(photos, folds, fold_seed)  # too few cards: said before the DB is built, not after
    db_path = Path(db_dir) if db_dir is not None else None
    catalog, emb, db, cals, build_s, simulated = build_real_db(realdata, model, out, calib_cards, db_path)
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
    memos: dict = {}  # path → Memo: photos-dev's first pass, reused by the adapter's
    for name, (recognizer, photo_set) in sets.items():
        reuse = memos if adapter and name == "photos-dev" else None
        per = evaluate_photo_set(recognizer, photo_set.rows(), progress, reuse)
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
                    recognizer, db, emb, per, photo_set, split, simulated, name_of, printing, progress, memos
                )
    write_json_atomic(out / "report.json", report)
    write_bytes_atomic(out / "report.html", render_html(report, catalog).encode())
    save_printing_sets(out / SIMULATED_SETS, simulated)  # for an adapter fitted on this DB next
    return report


def read_photo_records(report_json: str | Path, name: str = "photos-dev") -> list[dict]:
    """Each photo's record of one set of an earlier ``report.json`` (the one reader of that file):
    what a later step reuses instead of recognising the photos again."""
    from cardid.errors import CardIDError
    from cardid.io import read_json

    report = read_json(report_json, "photos report")
    try:
        return list(report["sets"][name]["per_photo"])
    except (KeyError, TypeError):
        raise CardIDError(f"{report_json}: no per-photo records of {name!r}") from None


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


def shipped(s: dict) -> tuple[str, dict, list[dict]] | None:
    """What a bundle built from this evaluation would ship, measured held out: ``(what, the fold
    figures with mean and sd, each photo's record)`` of the most complete configuration fitted on
    the other folds (adapter + printing model, else the printing model), or None without folds."""
    ad = s.get("adapter") or {}
    both = (ad.get("folds") or {}).get("printing_model_fitted")
    if both and both.get("per_photo"):
        return "adapter + printing model, both fitted on the other folds' cards", both, both["per_photo"]
    if ad:
        return "query adapter fitted on the other folds' cards", ad["folds"], ad["per_photo"]
    alone = (s.get("folds") or {}).get("printing_model_fitted")
    if alone and alone.get("per_photo"):
        return "printing model fitted on simulated views + the other folds' cards", alone, alone["per_photo"]
    return None


def render_html(report: dict, catalog) -> str:
    """What would ship first (its held-out figures and every failure of it), then the other
    configurations as comparisons, each labelled by what was fitted on what: every failure is the
    annotated photo beside the card it was named as and its true card."""
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
        res = {"no_card": p["outcome"] == NO_CARD, "cards": p["cards"]}
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
    ]

    def gallery(title: str, per: list[dict]) -> None:
        fails = sorted(
            (p for p in per if p["outcome"] != CORRECT), key=lambda p: OUTCOMES.index(p["outcome"])
        )
        body.append(f"<h2>{html.escape(title)}: {len(fails)} of {len(per)} not named correctly</h2>")
        body.extend(photo_row(p) for p in fails)

    leads = {name: shipped(s) for name, s in report["sets"].items()}
    for name, lead in leads.items():
        if lead:
            what, f, per = lead
            body.append(f"<h2>What ships, on {html.escape(name)} held out: {html.escape(what)}</h2>")
            body.append(
                f"<p><b>{html.escape(_printing_figures(f['mean'], f['sd']))}</b> "
                f"(mean ± sd over {len(f['per_fold'])} card-disjoint folds)</p>"
            )
            gallery(f"{name}, as shipped", per)
    body.append("<h2>Every configuration, for comparison</h2>")
    body.append(f"<pre>{html.escape(format_report(report))}</pre>")
    for name, s in report["sets"].items():
        first = (
            "as first recognised: printing model fitted on simulated views only"
            if leads[name]
            else "as recognised"
        )
        gallery(f"{name}, {first}", s["per_photo"])
    body.append("</body></html>")
    return "\n".join(body)
