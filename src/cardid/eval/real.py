"""``cardid eval real``: every stage and both classical baselines on real photos, in one run.

Gallery: the real scans (``gallery/`` + ``gallery.csv``); queries: ``queries-dev.csv``. The DB is
built with the model under test and calibrated on *simulated* views of the gallery (never on the
real queries). Reported per stage: Recall@1/@5 and ms/query — embedding alone, pHash alone, ORB
verification of the shortlist alone, the fused pipeline (with its decisions), and brute-force ORB
against every scan. An HTML page shows every query with its top-5 and a failure gallery.
"""

from __future__ import annotations

import html
import random
import time
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from cardid.catalog.folder import catalog_from_folder
from cardid.catalog.records import Catalog
from cardid.db.build import build_db
from cardid.db.store import CardDB
from cardid.db.verify import extract, match
from cardid.decision.decide import BACK, MATCH, UNKNOWN, score
from cardid.decision.match import Matcher
from cardid.embed import Embedder, load_embedder
from cardid.errors import CardIDError
from cardid.eval.queries import load_queries
from cardid.fit.calibrate import calibrate_db, fit_printing, synthetic_queries
from cardid.images import jpeg_data_url, load_rgb
from cardid.io import write_bytes_atomic, write_json_atomic


def _recall(ranks: list[int | None], k: int) -> float:
    return sum(r is not None and r < k for r in ranks) / max(len(ranks), 1)


def _rank(order: list[str], truth: str) -> int | None:
    return order.index(truth) if truth in order else None


def _stage(ranks, times) -> dict:
    return {
        "recall@1": _recall(ranks, 1),
        "recall@5": _recall(ranks, 5),
        "ms_per_query": float(np.mean(times) * 1e3) if times else None,
        "ranks": ranks,
    }


class RealDB(NamedTuple):
    catalog: Catalog
    embedder: Embedder
    db: CardDB
    calibrations: dict
    build_s: float
    printing_sets: list  # the simulated printing sets its printing model was fitted on


def build_real_db(
    realdata: Path,
    model: str | Path | Embedder,
    out: Path,
    calib_cards: int = 300,
    db_dir: Path | None = None,
) -> RealDB:
    """The real gallery as a catalog, a DB built with ``model`` and calibrated on simulated views
    (its printing model too). ``db_dir``: a DB already built with ``model`` and calibrated (a
    pipeline's ``calibrate`` stage: what its bundle ships), opened read-only instead; its
    simulated printing sets are made the same way, for the folds' printing models."""
    if not (realdata / "gallery.csv").is_file():
        raise CardIDError(f"not a realdata folder (no gallery.csv): {realdata}")
    catalog = catalog_from_folder(
        realdata / "gallery", out / "catalog", metadata_csv=realdata / "gallery.csv"
    )
    emb = model if isinstance(model, Embedder) else load_embedder(model)
    if db_dir is not None:
        from cardid.decision.decide import Calibration
        from cardid.fit.calibrate import printing_sets_on_views

        db = CardDB.load(db_dir, emb)  # refuses a DB built with another model
        if not db.calibration:
            raise CardIDError(
                f"the DB {db_dir} is not calibrated: evaluate it after `cardid index calibrate`"
            )
        cals = {k: Calibration.from_dict(v) for k, v in db.calibration.items()}
        sets = printing_sets_on_views(db, emb, catalog, cards=None) if "fused" in cals else []
        return RealDB(catalog, emb, db, cals, 0.0, sets)
    t0 = time.perf_counter()
    db = build_db(emb, catalog, out / "db", overwrite=True)
    build_s = time.perf_counter() - t0
    ids = random.Random(0).sample(db.ids, min(calib_cards, len(db)))
    images, labels = synthetic_queries(catalog, ids, seed=0)
    cals = calibrate_db(db, emb, images, labels)  # stored in db.json and in db.meta
    model, sets = fit_printing(db, emb, catalog, cards=None)  # every card with another printing
    if model is not None:
        cals["fused"].printing = model.to_dict()
    return RealDB(catalog, emb, db, cals, build_s, sets)


def evaluate_real(
    realdata: str | Path,
    model: str | Path,
    out: str | Path,
    calib_cards: int = 300,
    brute_force: bool = True,
    progress=None,
) -> dict:
    realdata, out = Path(realdata), Path(out)
    catalog, emb, db, cals, build_s, _ = build_real_db(realdata, model, out, calib_cards)
    qs = load_queries(realdata / "queries-dev.csv")
    matcher = Matcher(db, emb)
    names = ("embedding", "phash", "orb_shortlist", "fused", "orb_brute_force")
    ranks = {n: [] for n in names}
    times = {n: [] for n in names}
    rows = []
    for path, truth in zip(qs.paths, qs.card_ids, strict=True):
        im = load_rgb(path)
        t = time.perf_counter()
        e = emb.embed([im])[0]
        t_emb = time.perf_counter() - t
        hits = db.search(e, k=len(db))[0]
        ranks["embedding"].append(_rank([h.card_id for h in hits], truth))
        times["embedding"].append(t_emb)
        t = time.perf_counter()
        feats = extract(im, db.features.cfg, keep_fine=True)
        hd = np.bitwise_count(np.asarray(db.features.hashes) ^ feats.hash)
        times["phash"].append(time.perf_counter() - t)
        order = np.argsort(hd, kind="stable")
        ranks["phash"].append(_rank([db.ids[i] for i in order], truth))
        t = time.perf_counter()
        q = matcher.prepare([im])[0]
        d = matcher.decide(q)  # what `recognize` decides, the printing included
        cands = d.candidates
        t_fused = time.perf_counter() - t
        times["fused"].append(t_fused)
        times["orb_shortlist"].append(t_fused - t_emb)  # features + verification of the shortlist
        ranks["fused"].append(_rank([c.card_id for c in d.candidates], truth))
        by_inliers = sorted(cands, key=lambda c: -(c.inliers or 0))
        ranks["orb_shortlist"].append(_rank([c.card_id for c in by_inliers], truth))
        correct = any(c.card_id == truth for c in d.cards)
        rows.append(
            {
                "file": str(path),
                "card_id": truth,
                "decision": d.kind,
                "correct": correct,
                "chosen": [c.card_id for c in d.cards],
                "top": [
                    {
                        "card_id": c.card_id,
                        "cos": round(c.cos, 3),
                        "inliers": c.inliers,
                        "score": round(c.score, 3),
                    }
                    for c in score(d.candidates, matcher.calibration)[:5]
                ],
            }
        )
        if brute_force:
            t = time.perf_counter()
            inl = [
                match(feats, np.asarray(p), np.asarray(dsc), db.features.cfg).inliers
                for p, dsc in (db.features.keypoints(r) for r in range(len(db)))
            ]
            times["orb_brute_force"].append(time.perf_counter() - t)
            order = np.argsort(-np.asarray(inl), kind="stable")
            ranks["orb_brute_force"].append(_rank([db.ids[i] for i in order], truth))
        if progress:
            progress(1)
    kinds = [r["decision"] for r in rows]
    report = {
        "model": str(model),
        "model_identity": emb.identity,
        "gallery": len(db),
        "queries": len(rows),
        "db_build_s": round(build_s, 1),
        "calibration": {k: v.to_dict() for k, v in cals.items()},
        "stages": {n: _stage(ranks[n], times[n]) for n in names if ranks[n]},
        "decisions": {
            "match_correct": sum(r["decision"] == MATCH and r["correct"] for r in rows),
            "match_wrong": sum(r["decision"] == MATCH and not r["correct"] for r in rows),
            "ambiguous": kinds.count("ambiguous"),
            "unknown": kinds.count(UNKNOWN),
            "back": kinds.count(BACK),
        },
        "per_query": rows,
    }
    write_json_atomic(out / "report.json", report)
    write_bytes_atomic(out / "report.html", render_html(report, catalog).encode())
    return report


def _img_tag(rgb: np.ndarray, h: int = 160) -> str:
    w = max(1, round(rgb.shape[1] * h / rgb.shape[0]))
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return f'<img src="{jpeg_data_url(small, 80)}" height="{h}">'


def format_stages(report: dict) -> str:
    lines = [f"{'stage':<18}{'R@1':>7}{'R@5':>7}{'ms/query':>10}"]
    for n, s in report["stages"].items():
        ms = f"{s['ms_per_query']:.1f}" if s["ms_per_query"] is not None else "-"
        lines.append(f"{n:<18}{s['recall@1']:>7.3f}{s['recall@5']:>7.3f}{ms:>10}")
    d = report["decisions"]
    lines.append(
        f"fused decisions: {d['match_correct']} correct matches, {d['match_wrong']} wrong, "
        f"{d['ambiguous']} ambiguous, {d['unknown']} unknown (of {report['queries']})"
    )
    return "\n".join(lines)


def render_html(report: dict, catalog) -> str:
    """One self-contained page: stage table, every query with its top-5, failures first."""

    def card(cid, extra="", frame="#ccc"):
        img = _img_tag(catalog.load_image(cid)) if cid in catalog else ""
        name = html.escape(catalog[cid].name) if cid in catalog else ""
        return (
            f'<div class="c" style="border-color:{frame}">{img}<br><b>{html.escape(cid)}</b>'
            f"<br>{name}<br>{extra}</div>"
        )

    def query_row(r):
        q = _img_tag(load_rgb(r["file"]))
        color = {"match": "#2a2", "ambiguous": "#e90", "unknown": "#c22", "back": "#36c"}[r["decision"]]
        if r["decision"] == MATCH and not r["correct"]:
            color = "#c22"
        tiles = "".join(
            card(
                t["card_id"],
                f"cos {t['cos']:.2f} · inl {t['inliers']} · {t['score']:.2f}",
                "#36c"
                if t["card_id"] == r["card_id"]
                else ("#2a2" if t["card_id"] in r["chosen"] else "#ccc"),
            )
            for t in r["top"]
        )
        return (
            f'<div class="row"><div class="c" style="border-color:{color}">{q}<br>'
            f"<b>{html.escape(r['decision'])}</b><br>truth {html.escape(r['card_id'])}"
            f"<br>{html.escape(Path(r['file']).name)}</div>{tiles}</div>"
        )

    failures = [r for r in report["per_query"] if not (r["decision"] == MATCH and r["correct"])]
    table = html.escape(format_stages(report))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>cardid eval real</title>
<style>body{{font-family:sans-serif;margin:20px}} .row{{display:flex;gap:8px;margin:10px 0}}
.c{{border:4px solid #ccc;padding:4px;font-size:12px;text-align:center;max-width:150px}}
pre{{background:#f4f4f4;padding:10px}}</style></head><body>
<h1>Real photos → {report["gallery"]} gallery scans</h1>
<p>model {html.escape(report["model"])} ({report["model_identity"]}); blue frame = the true card,
green = chosen; thresholds calibrated on simulated views only.</p>
<pre>{table}</pre>
<h2>Failures ({len(failures)})</h2>{"".join(query_row(r) for r in failures) or "<p>none</p>"}
<h2>All queries</h2>{"".join(query_row(r) for r in report["per_query"])}
</body></html>"""
