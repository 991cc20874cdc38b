"""A ``cardid eval photos`` report, read: its text summary (:func:`format_report`), what would ship
(:func:`shipped`), its HTML page (:func:`render_html`) and its photos' records
(:func:`read_photo_records`), each read back through :mod:`cardid.fit.records`."""

from __future__ import annotations

import html
from pathlib import Path

from cardid.eval.real import _img_tag
from cardid.fit.outcomes import CORRECT, OUTCOMES
from cardid.fit.records import PhotoRecord, read_records
from cardid.images import load_rgb
from cardid.recognize import annotate


def read_photo_records(report_json: str | Path, name: str = "photos-dev") -> list[PhotoRecord]:
    """Each photo's record of one set of an earlier ``report.json`` (the one reader of that file):
    what a later step reuses instead of recognising the photos again."""
    from cardid.errors import CardIDError
    from cardid.io import read_json

    report = read_json(report_json, "photos report")
    try:
        rows = report["sets"][name]["per_photo"]
    except (KeyError, TypeError):
        raise CardIDError(f"{report_json}: no per-photo records of {name!r}") from None
    return read_records(rows)


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


def shipped(s: dict) -> tuple[str, dict, list[PhotoRecord]] | None:
    """What a bundle built from this evaluation would ship, measured held out: ``(what, the fold
    figures with mean and sd, each photo's record)`` of the most complete configuration fitted on
    the other folds (adapter + printing model, else the printing model), or None without folds."""
    ad = s.get("adapter") or {}
    choices = (
        (
            "adapter + printing model, both fitted on the other folds' cards",
            (ad.get("folds") or {}).get("printing_model_fitted"),
        ),
        (
            "query adapter fitted on the other folds' cards",
            {**ad["folds"], "per_photo": ad["per_photo"]} if ad else None,
        ),
        (
            "printing model fitted on simulated views + the other folds' cards",
            (s.get("folds") or {}).get("printing_model_fitted"),
        ),
    )
    for what, fitted in choices:
        if fitted and fitted.get("per_photo"):
            return what, fitted, read_records(fitted["per_photo"])
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

    def photo_row(p: PhotoRecord):
        im = load_rgb(p.file)
        try:
            shown = annotate(im, {"no_card": p.no_card, "cards": [c.to_json() for c in p.cards]})
        except Exception:  # a record without corners: show the photo as it is
            shown = im
        frame = color.get(p.outcome, "#888")
        how = f"{p.found} found" + (f", whole image ({p.fallback})" if p.fallback else "")
        return (
            f'<div class="row"><div class="c" style="border-color:{frame}">{_img_tag(shown, 200)}<br>'
            f"<b>{p.outcome}</b> · {how} · {p.ms or 0:.0f} ms<br>{html.escape(Path(p.file).name)}"
            f"<br><small>{html.escape(p.notes)}</small></div>"
            f"{scan(p.named, 'named', frame)}{scan(p.top1, 'top-1 candidate')}"
            f"{scan(p.card_id, 'truth', '#36c')}</div>"
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

    def gallery(title: str, per: list[PhotoRecord]) -> None:
        fails = sorted((p for p in per if p.outcome != CORRECT), key=lambda p: OUTCOMES.index(p.outcome))
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
        gallery(f"{name}, {first}", read_records(s["per_photo"]))
    body.append("</body></html>")
    return "\n".join(body)
