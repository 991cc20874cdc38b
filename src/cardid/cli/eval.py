"""``cardid eval``: retrieval evaluation of any model, with the perceptual-hash baseline beside it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Evaluate models.", no_args_is_help=True)
out = Console()


@app.command("retrieval")
def retrieval_cmd(
    model: Path = typer.Option(..., help="A model directory (model.json + weights)."),
    gallery: Path = typer.Option(
        ..., help="Gallery: a catalog, a dataset root or a folder of <card_id>.<ext> scans."
    ),
    queries: Path = typer.Option(..., help="A CSV (file, card_id) or a dataset/class-folder directory."),
    batch_size: int = typer.Option(64, min=1, help="Embedding batch size."),
    workers: int = typer.Option(2, min=0, help="Image decoding processes."),
    baseline: bool = typer.Option(True, help="Also evaluate the pHash baseline."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
) -> None:
    """Recall@1/@5, mAP@R, leave-one-out NN, collapse diagnostics; model vs pHash."""
    from cardid.catalog.records import Catalog
    from cardid.embed import load_embedder
    from cardid.eval.evaluate import evaluate, format_report
    from cardid.eval.queries import load_queries
    from cardid.io import write_json_atomic
    from cardid.progress import progress

    emb = load_embedder(model, batch_size=batch_size)
    cat = Catalog.open(gallery)
    qs = load_queries(queries)
    with progress(len(cat) + len(qs), "embedding") as advance:
        report = evaluate(emb, cat, qs, baseline=baseline, workers=workers, progress=advance)
    report["model_dir"], report["queries_source"] = str(model), str(queries)
    out.print(format_report(report))
    if json_out:
        write_json_atomic(json_out, report)


@app.command("real")
def real_cmd(
    model: Path = typer.Option(..., help="A model directory (model.json + weights)."),
    realdata: Path = typer.Option(
        Path("../shared/realdata"), help="The real-data folder (gallery.csv, queries-dev.csv)."
    ),
    out_dir: Path = typer.Option(
        Path("runs/eval-real"), "--out", help="Where the DB, report.json and report.html go."
    ),
    calib_cards: int = typer.Option(
        300, min=1, help="Gallery cards rendered as simulated calibration views."
    ),
    brute_force: bool = typer.Option(
        True, help="Also run the brute-force ORB baseline (about 8 s per query)."
    ),
) -> None:
    """Every stage (embedding, pHash, ORB shortlist, fused) and brute-force ORB on real photos."""
    from cardid.eval.queries import load_queries
    from cardid.eval.real import evaluate_real, format_stages
    from cardid.progress import progress

    n = len(load_queries(realdata / "queries-dev.csv")) if (realdata / "queries-dev.csv").is_file() else 0
    with progress(n, "real queries") as advance:
        report = evaluate_real(realdata, model, out_dir, calib_cards, brute_force, progress=advance)
    out.print(format_stages(report))
    out.print(f"report: {out_dir / 'report.html'}")


@app.command("photos")
def photos_cmd(
    model: Path = typer.Option(..., help="A model directory or an ONNX export."),
    realdata: Path = typer.Option(
        Path("../shared/realdata"), help="The real-data folder (gallery.csv, photos-dev.csv)."
    ),
    out_dir: Path = typer.Option(
        Path("runs/eval-photos"), "--out", help="Where the DB, report.json and report.html go."
    ),
    detector: str = typer.Option("classical", help="'classical' or a YOLO-OBB .pt/.onnx."),
    conf: float = typer.Option(0.25, min=0.0, max=1.0, help="Detector confidence threshold."),
    limit: int | None = typer.Option(None, min=1, help="Evaluate a fixed random sample of this many photos."),
    fallback: bool = typer.Option(True, help="Whole-image fallback when nothing is found."),
    calib_cards: int = typer.Option(
        300, min=1, help="Gallery cards rendered as simulated calibration views."
    ),
    folds: int | None = typer.Option(
        None, min=2, help="Also report photos-dev in K card-disjoint folds (all printings of a card in one)."
    ),
    fold_seed: int = typer.Option(0, help="Seed of the fold split."),
    printing: str = typer.Option(
        "model",
        help="How the printing is decided: 'model' (calibrated probabilities) or 'rules' (to compare).",
    ),
    adapter: bool = typer.Option(
        False,
        help="With --folds: recognise each fold again with a query adapter fitted on the other folds' photos.",
    ),
    db: Path | None = typer.Option(
        None,
        help="A DB built with --model and calibrated: evaluated as it is, not built and calibrated here.",
    ),
) -> None:
    """Whole real photos → decisions: Recall@1, wrong matches, no_card, ms per photo, by notes;
    the card and its printing counted apart, by crop width; with --folds, per card-disjoint fold,
    and the printing model (and with --adapter, a query adapter) fitted on the other folds' photos."""
    from cardid.data.photoset import load_photo_set
    from cardid.eval.photos import evaluate_photos
    from cardid.eval.photos_report import format_report
    from cardid.progress import progress

    # for the progress bar only: evaluate_photos reads and checks the lists (and the folds) itself
    n = len(load_photo_set(realdata / "photos-dev.csv", check_images=False).sample(limit))
    if adapter:
        n *= 2  # photos-dev twice: without, then with each fold's adapter
    if (realdata / "queries-dev.csv").is_file():
        n += len(load_photo_set(realdata / "queries-dev.csv", check_images=False))
    with progress(n, "photos") as advance:
        report = evaluate_photos(
            realdata,
            model,
            out_dir,
            detector,
            calib_cards,
            limit,
            fallback,
            conf,
            progress=advance,
            folds=folds,
            fold_seed=fold_seed,
            printing=printing,
            adapter=adapter,
            db_dir=db,
        )
    out.print(format_report(report))
    out.print(f"report: {out_dir / 'report.html'}")


@app.command("detection")
def detection_cmd(
    detector: str = typer.Option(..., help="A YOLO-OBB .pt/.onnx (or 'classical')."),
    data: list[Path] = typer.Option(
        [Path("../shared/realdata/detection/pokemon-card-outliner-1")],
        help="Folders of images with YOLO txt labels (axis-aligned); a dataset root uses train/valid/test.",
    ),
    conf: float = typer.Option(
        0.25, min=0.0, max=1.0, help="Detector confidence threshold (AP uses every detection above it)."
    ),
    imgsz: int | None = typer.Option(None, min=32, help="Inference size (default: the training size)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
) -> None:
    """Precision, recall and AP@0.5 on real photos, beside the classical contour finder."""
    from cardid.detect.classical import ClassicalFinder
    from cardid.detect.evaluate import evaluate_detector, labelled_images
    from cardid.io import write_json_atomic
    from cardid.progress import progress
    from cardid.recognize import make_detector

    folders = []
    for d in data:
        subs = [d / s for s in ("train", "valid", "val", "test") if (d / s).is_dir()]
        folders += subs or [d]
    pairs = labelled_images(folders)
    det = make_detector(detector, conf)
    if imgsz and hasattr(det, "imgsz"):
        det.imgsz = imgsz
    report = {"images": len(pairs), "detector": detector}
    for name, fn in (("detector", det.detect), ("classical", ClassicalFinder().detect)):
        with progress(len(pairs), name) as advance:
            report[name] = evaluate_detector(fn, pairs, progress=advance)
    out.print(
        f"{'':<11}{'P':>7}{'R':>7}{'AP50':>7}{'P@R.95':>8}{'at conf':>8}{'ms/img':>9}   ({report['images']} photos)"
    )
    for name in ("detector", "classical"):
        r = report[name]
        op = r["at_recall_0.95"]
        conf_at = f"{op['score_threshold']:.3f}" if op["score_threshold"] is not None else "-"
        out.print(
            f"{name:<11}{r['precision']:>7.3f}{r['recall']:>7.3f}{r['ap50']:>7.3f}{op['precision']:>8.3f}"
            f"{conf_at:>8}{r['ms_per_image']:>9.1f}"
        )
    if json_out:
        write_json_atomic(json_out, report)
