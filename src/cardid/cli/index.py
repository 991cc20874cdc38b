"""``cardid index``: build, search, extend and calibrate a reference DB; ``cardid recognize``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cardid.errors import CardIDError

app = typer.Typer(help="Reference DB: build, search, add cards, calibrate decisions.", no_args_is_help=True)
out = Console()

MODEL = typer.Option(..., help="The embedding artefact: a model directory (model.json + weights).")
DB = typer.Option(..., "--db", help="A reference DB directory (from `cardid index build`).")


@app.command("build")
def build_cmd(
    model: Path = MODEL,
    catalog: Path = typer.Option(..., help="A catalog directory or a folder of <card_id>.<ext> scans."),
    out_dir: Path = typer.Option(..., "--out", help="The DB directory to write."),
    dtype: str = typer.Option("f32", help="usearch index storage: f32, f16 or i8."),
    verify: bool = typer.Option(True, help="Store keypoints, strips and hashes for verification."),
    batch_size: int = typer.Option(64, min=1, help="Embedding batch size."),
    workers: int = typer.Option(2, min=0, help="Image decoding processes."),
    overwrite: bool = typer.Option(False, help="Replace an existing DB (only once the new one is complete)."),
    calibrate: bool = typer.Option(
        True, help="Calibrate decisions on simulated views of the scans (else every decision is 'unknown')."
    ),
    calibrate_cards: int = typer.Option(300, min=1, help="How many cards to render one simulated view of."),
    skip_missing: bool = typer.Option(
        False, help="Leave out cards whose scan is missing (listed in db.json) instead of stopping."
    ),
) -> None:
    """Embed every gallery scan with MODEL, write a self-describing DB directory and calibrate it."""
    from cardid.db.store import CardDB
    from cardid.db.verify import VerifyConfig
    from cardid.embed import load_embedder
    from cardid.eval.evaluate import open_gallery
    from cardid.progress import progress

    emb = load_embedder(model, batch_size=batch_size)
    cat = open_gallery(catalog)
    n = len(cat) - (len(cat.missing_images()) if skip_missing else 0)
    with progress(n * (2 if verify else 1), "indexing") as advance:
        db = CardDB.build(
            emb,
            cat,
            out_dir,
            dtype,
            VerifyConfig() if verify else None,
            overwrite,
            workers,
            advance,
            skip_missing,
        )
    skipped = db.meta.get("skipped_missing") or []
    if skipped:
        out.print(
            f"[yellow]skipped {len(skipped)} card(s) without a scan[/], e.g. {', '.join(skipped[:3])} "
            f"(listed in {out_dir / 'db.json'}; `cardid index add` them once they are downloaded)"
        )
    out.print(
        f"[green]DB[/] {out_dir}: {len(db)} cards × {db.dim} ({dtype}), model {db.meta['model']['identity']}"
    )
    if calibrate:
        from cardid.db.calibrate import calibrate_on_views

        with progress(min(calibrate_cards, len(db)), "calibrating") as advance:
            cals = calibrate_on_views(db, emb, cat, calibrate_cards, progress=advance)
        for mode, cal in cals.items():
            st = cal.stats
            out.print(
                f"calibrated ({mode}): threshold {cal.threshold:.3f}, precision {st['precision']:.3f}, "
                f"recall {st['recall']:.3f} on simulated views"
            )
        _say_printing(cals)


@app.command("add")
def add_cmd(
    model: Path = MODEL,
    db: Path = DB,
    catalog: Path = typer.Option(..., help="The new cards: a catalog directory or a folder of scans."),
    batch_size: int = typer.Option(64, min=1, help="Embedding batch size."),
    workers: int = typer.Option(2, min=0, help="Image decoding processes."),
) -> None:
    """Append new cards (e.g. a new set) without re-embedding the others."""
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.eval.evaluate import open_gallery
    from cardid.progress import progress

    emb = load_embedder(model, batch_size=batch_size)
    card_db = CardDB.load(db, emb)
    cat = open_gallery(catalog)
    verify = card_db.features is not None
    with progress(len(cat) * (2 if verify else 1), "adding") as advance:
        new = card_db.add(emb, cat, workers, advance)
    out.print(f"[green]DB[/] {db}: {len(card_db)} → {len(new)} cards")
    if new.calibration:
        out.print(
            "[yellow]note:[/] thresholds were calibrated before the new cards; re-run `cardid index calibrate`"
        )


@app.command("search")
def search_cmd(
    images: list[Path] = typer.Argument(..., help="Card crops to look up."),
    model: Path = MODEL,
    db: Path = DB,
    k: int = typer.Option(5, min=1, help="Neighbours per image."),
    approximate: bool = typer.Option(False, help="Use the HNSW graph instead of exact search."),
) -> None:
    """Nearest gallery cards by embedding alone (no verification, no decision)."""
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.io import load_rgb

    emb = load_embedder(model)
    card_db = CardDB.load(db, emb)
    vecs = emb.embed([load_rgb(p) for p in images])
    for path, hits in zip(images, card_db.search(vecs, k, exact=not approximate), strict=True):
        table = Table(title=str(path))
        for col in ("#", "card", "name", "set", "number", "cosine"):
            table.add_column(col)
        for i, h in enumerate(hits, 1):
            table.add_row(
                str(i), h.card_id, h.record.name, h.record.set_id, h.record.number, f"{h.similarity:.4f}"
            )
        out.print(table)


@app.command("adapt")
def adapt_cmd(
    model: Path = MODEL,
    db: Path = DB,
    photos: Path | None = typer.Option(
        None, help="Labelled real photos: a CSV of file,card_id[,notes] (the form of photos-dev.csv)."
    ),
    detector: str = typer.Option(
        "classical", help="Card finder for the photos: 'classical' or a YOLO-OBB .pt/.onnx."
    ),
    conf: float = typer.Option(0.25, min=0.0, max=1.0, help="Detector confidence threshold."),
    folds: int = typer.Option(5, min=2, help="Card-disjoint inner folds the ridge λ is chosen on."),
    seed: int = typer.Option(0, help="Seed of the inner fold split."),
    remove: bool = typer.Option(False, "--remove", help="Remove the DB's adapter instead."),
) -> None:
    """Learn a query adapter from real photo ↔ scan pairs and store it with the DB.

    Every later query embedding is mapped towards its scan's before the search. Measure it
    card-disjointly first: `cardid eval photos --folds 5 --adapter`."""
    from cardid.catalog.records import name_key
    from cardid.data.photoset import load_photo_set
    from cardid.db.adapt import adapt_db
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.eval.folds import card_folds
    from cardid.io import load_rgb
    from cardid.progress import progress
    from cardid.recognize import Recognizer, make_detector

    emb = load_embedder(model)
    card_db = CardDB.load(db, emb)
    if remove:
        card_db.save_adapter(None)
        out.print(f"removed the query adapter of {db}")
        return
    if photos is None:
        raise CardIDError("give --photos (a labelled CSV) to fit an adapter on, or --remove")
    photo_set = load_photo_set(photos)
    photo_set.require_cards(card_db.row_of, f"the DB {db}")
    split = card_folds(photo_set, folds, seed, group=lambda c: name_key(card_db.records[c]))
    rec = Recognizer.open(emb, card_db, make_detector(detector, conf))
    rec.matcher.adapter = None  # the corners come from the model as it is
    records = []
    with progress(len(photo_set), "finding cards") as advance:
        for ph in photo_set.photos:
            res = rec.recognize_photo(load_rgb(ph.path))
            records.append({"file": str(ph.path), "card_id": ph.card_id, "cards": res["cards"]})
            advance(1)
    with progress(len(records), "fitting") as advance:
        stats = adapt_db(
            card_db, emb, records, [split.fold_of[r["card_id"]] for r in records], photos, advance
        )
    out.print(
        f"query adapter stored in {db}: {stats['pairs']} photo ↔ scan pairs, λ {stats['lam']}; "
        f"Recall@1 on held-out inner folds {stats['recall@1_without']:.3f} → {stats['recall@1_with']:.3f}"
    )


@app.command("calibrate")
def calibrate_cmd(
    model: Path = MODEL,
    db: Path = DB,
    queries: Path | None = typer.Option(
        None, help="Labelled queries: a CSV (file, card_id) or a dataset directory. Default: simulated views."
    ),
    catalog: Path | None = typer.Option(
        None, help="For simulated views: the catalog the DB was built from (default: the one in db.json)."
    ),
    cards: int = typer.Option(300, min=1, help="Simulated views: how many DB cards to render (1 view each)."),
    target_precision: float = typer.Option(0.95, help="Precision of accepted results to calibrate for."),
    seed: int = typer.Option(0, help="Seed for the simulated views."),
) -> None:
    """Choose the unknown-card threshold and the ambiguity margin; store them in db.json."""
    from cardid.db.calibrate import calibrate_db, calibrate_on_views
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.eval.evaluate import open_db_gallery
    from cardid.eval.queries import load_queries
    from cardid.io import load_rgb
    from cardid.progress import progress

    emb = load_embedder(model)
    card_db = CardDB.load(db, emb)
    if queries is not None:
        qs = load_queries(queries)
        images, labels = [load_rgb(p) for p in qs.paths], qs.card_ids
        with progress(len(images), "calibrating") as advance:
            result = calibrate_db(card_db, emb, images, labels, target_precision, progress=advance)
    else:
        cat = open_db_gallery(card_db, catalog)
        with progress(min(cards, len(card_db)), "calibrating") as advance:
            result = calibrate_on_views(card_db, emb, cat, cards, seed, target_precision, advance)
    table = Table(title=f"calibration of {db} (target precision {target_precision})")
    for col in (
        "mode",
        "threshold",
        "margin",
        "precision",
        "recall",
        "unknown rejected",
        "match/ambig/unknown",
    ):
        table.add_column(col)
    for mode, cal in result.items():
        s = cal.stats
        table.add_row(
            mode,
            f"{cal.threshold:.3f}",
            f"{cal.margin:.3f}",
            f"{s['precision']:.3f}",
            f"{s['recall']:.3f}",
            f"{s['unknown_rejected']:.3f}",
            "/".join(str(v) for v in s["decisions"].values()),
        )
    out.print(table)
    _say_printing(result)


def _say_printing(cals: dict) -> None:
    """One line on the printing model fitted with the fused calibration (or why there is none)."""
    fused = cals.get("fused")
    pm = fused.printing if fused is not None else None
    if pm:
        out.print(
            f"printing model: fitted on {pm['fitted'].get('sets', 0)} simulated printing sets, names a printing "
            f"at p ≥ {pm['p_min']} (fit it on real photos card-disjointly with `cardid eval photos --folds 5`)"
        )
    elif fused is not None:
        out.print("printing model: hand-set defaults (no card in the DB has another printing to fit it on)")


def unique_stems(paths: list[str]) -> list[str]:
    """One picture name per input: ``a/x.jpg`` and ``b/x.jpg`` become ``x`` and ``x-2``."""
    used: set[str] = set()
    out = []
    for p in paths:
        stem, n = Path(p).stem, 1
        name = stem
        while name in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        out.append(name)
    return out


def recognize_cmd(
    images: list[str] = typer.Argument(
        ..., help="Photos (with --detector) or card crops: files, folders, globs, a CSV of paths, or videos."
    ),
    model: Path = MODEL,
    db: Path = DB,
    detector: str | None = typer.Option(
        None,
        help="Find cards in whole photos: a YOLO-OBB .pt/.onnx or 'classical'. Without it, each image is one card crop.",
    ),
    conf: float = typer.Option(0.25, min=0.0, max=1.0, help="Detector confidence threshold."),
    fallback: bool = typer.Option(
        True, help="A photo where nothing is found is tried as a whole (flagged 'fallback' in the output)."
    ),
    top: int = typer.Option(5, min=1, help="Candidates listed per card."),
    verify: bool = typer.Option(
        True, help="Geometric verification of the shortlist (if the DB has features)."
    ),
    read_numbers: bool = typer.Option(
        True,
        help="Read the collector number (Tesseract) where the printing is in doubt: reprints, ambiguous sets.",
    ),
    show: Path | None = typer.Option(
        None, help="Write one PNG per image here (annotated photo, or crop beside its top-5)."
    ),
    catalog: Path | None = typer.Option(None, help="Gallery scans for --show (default: the one in db.json)."),
    json_out: Path | None = typer.Option(
        None, "--json", help="Write JSON lines here (as they finish) instead of stdout."
    ),
    workers: int = typer.Option(2, min=1, help="Decoding threads; also the most images held in memory."),
    resume: bool = typer.Option(
        False,
        help="With --json: skip photos already in that file (by resolved path), append the rest; "
        "photos recorded as unreadable are tried again.",
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing --json file (default: refuse)."),
    strict: bool = typer.Option(
        False, help="Stop at the first unreadable file (default: report it and go on)."
    ),
    every: int = typer.Option(1, min=1, help="Videos: recognise every n-th frame."),
) -> None:
    """Name each card: JSON lines (decision, top-k with names, sets, numbers, scores) and a table.
    Any number of photos streams in bounded memory; a video (.mp4, .mov, .avi, …) prints each card
    confirmed across frames once per visit."""
    from cardid.db.match import MatchConfig
    from cardid.recognize import Recognizer, expand_inputs, is_video, make_detector

    if resume and not json_out:
        raise CardIDError("--resume needs --json FILE (the output to resume)")
    if resume and overwrite:
        raise CardIDError("--resume continues the --json file and --overwrite replaces it: give one")
    if (
        json_out
        and json_out.exists()
        and not (resume or overwrite)
        and (json_out.is_dir() or json_out.stat().st_size)
    ):
        raise CardIDError(
            f"{json_out} already exists: --resume to continue it, --overwrite to replace it, "
            "or write to another file"
        )
    paths = expand_inputs(images, exclude=[p for p in (show, json_out) if p])
    videos = [p for p in paths if is_video(p)]
    if videos and len(videos) != len(paths):
        raise CardIDError("give either photos or videos, not both in one call")
    if videos and not detector:
        detector = "classical"  # a video frame is a scene, never one card crop
    det = make_detector(detector, conf) if detector else None
    if read_numbers and verify:
        from cardid.printing.ocr import tesseract_available

        if not tesseract_available():  # stderr: stdout may be the JSON lines
            Console(stderr=True).print(
                "[yellow]note:[/] Tesseract is not installed: collector numbers are not read "
                "(pip install 'cardid[ocr]', or apt-get install tesseract-ocr)",
                highlight=False,
            )
    config = MatchConfig(verify=verify, read_numbers=read_numbers)
    rec = Recognizer.open(model, db, det, config, fallback=fallback)
    if videos:
        _recognize_videos(rec, videos, top, every, json_out)
        return
    _recognize_photos(rec, paths, top, workers, strict, resume, json_out, show, catalog)


#: Above this many photos the per-card table is replaced by a summary line.
TABLE_ROWS = 50


def _recognize_photos(rec, paths, top, workers, strict, resume, json_out, show, catalog) -> None:
    from cardid.eval.evaluate import open_db_gallery
    from cardid.io import save_rgb, write_bytes_atomic
    from cardid.progress import progress
    from cardid.recognize import (
        annotate,
        photo_key,
        prepare_pictures_dir,
        read_results,
        recognize_stream,
        save_decision_png,
    )

    card_db = rec.matcher.db
    identity = card_db.meta["model"]["identity"]
    done: set[Path] = set()
    if resume and json_out.is_file():
        keep, done, notes = read_results(json_out, identity)
        for note in notes:
            Console(stderr=True).print(f"[yellow]note:[/] {note}", highlight=False)
        if notes:  # errors and a torn line are replaced by this run's records, not appended to
            write_bytes_atomic(json_out, "".join(line + "\n" for line in keep).encode("utf-8"))
    if show:
        prepare_pictures_dir(show)
    cat = None
    if show and rec.detector is None:
        try:
            cat = open_db_gallery(card_db, catalog)
        except CardIDError as e:  # the picture still shows the query and the names
            Console(stderr=True).print(f"[yellow]gallery scans unavailable for --show:[/] {e}")
    names = dict(zip(map(str, paths), unique_stems([str(p) for p in paths]), strict=True))
    sink = json_out.open("a" if resume else "w", encoding="utf-8") if json_out else None
    results, errors, n, first_error = [], 0, 0, None
    todo = len([p for p in paths if photo_key(p) not in done])
    try:
        with progress(todo, "recognising", enabled=todo > 1) as advance:
            for r, im in recognize_stream(rec, paths, top, workers, strict, done, with_images=bool(show)):
                r = {k: v for k, v in r.items() if not k.startswith("_")}
                r["model"] = identity
                line = json.dumps(r, ensure_ascii=False)
                if sink:
                    sink.write(line + "\n")
                    sink.flush()
                else:
                    print(line)
                n += 1
                if "error" in r:
                    errors += 1
                    first_error = first_error or r["error"]
                if len(results) <= TABLE_ROWS:
                    results.append(r)
                if show and im is not None:
                    dest = Path(show) / f"{names[r['image']]}.png"
                    if rec.detector is None:
                        save_decision_png(dest, im, r["cards"][0], cat)
                    else:
                        save_rgb(dest, annotate(im, r))
                advance(1)
    finally:
        if sink:
            sink.close()
    console = Console(stderr=json_out is None)
    if n <= TABLE_ROWS:
        console.print(_table(results, len(card_db)))
    else:
        console.print(f"{n} image(s) recognised against {len(card_db)} cards ({errors} unreadable)")
    skipped = len(paths) - todo
    if resume and json_out.is_file():
        console.print(f"resumed: {skipped} of {len(paths)} photo(s) were already in {json_out} and skipped")
    if not rec.matcher.calibrated:
        Console(stderr=True).print(
            "[bold yellow]warning:[/] this DB is not calibrated: with no threshold every decision is "
            "'unknown' (the candidates are still listed); run `cardid index calibrate` first"
        )
    if show:
        Console(stderr=True).print(f"pictures in {show}")
    if errors:  # every other file was recognised; the exit code still says not all were
        raise CardIDError(f"{errors} of {n} file(s) unreadable (their records say why), e.g. {first_error}")


def _table(results: list[dict], n_cards: int) -> Table:
    table = Table(title=f"{len(results)} image(s) against {n_cards} cards")
    for col in ("image", "decision", "card", "name", "set", "number", "score", "ms"):
        table.add_column(col)
    for r in results:
        if "error" in r:
            table.add_row(Path(r["image"]).name, "unreadable", "—", r["error"][:60], "", "", "", "")
            continue
        if r["no_card"]:
            table.add_row(Path(r["image"]).name, "no_card", "—", "", "", "", "", f"{r['ms']:.0f}")
        for c_rec in r["cards"]:
            if r["no_card"]:  # a whole-image fallback that named nothing
                continue
            c = c_rec["card"] or (c_rec["ambiguous_between"] or [None])[0]
            names = " | ".join(x["card_id"] for x in c_rec["ambiguous_between"]) or None
            table.add_row(
                Path(r["image"]).name,
                c_rec["decision"] + (" (whole image)" if c_rec.get("fallback") else ""),
                names or (c["card_id"] if c else "—"),
                c["name"] if c else "",
                c["set_id"] if c else "",
                c["number"] if c else "",
                f"{c_rec['score']:.2f}",
                f"{r['ms']:.0f}",
            )
    return table


def _recognize_videos(rec, videos: list[Path], top: int, every: int, json_out: Path | None) -> None:
    import cv2

    from cardid.io import write_bytes_atomic
    from cardid.progress import progress
    from cardid.recognize import recognize_video

    lines = []
    for v in videos:
        cap = cv2.VideoCapture(str(v))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) // every
        cap.release()
        with progress(total or None, f"recognising {Path(v).name}") as advance:
            res = recognize_video(rec, v, every, top=top, progress=advance)
        lines.append(json.dumps(res, ensure_ascii=False))
        table = Table(title=f"{v}: {len(res['cards'])} card(s) in {res['frames']} frames")
        for col in ("card", "name", "set", "number", "frames", "seconds"):
            table.add_column(col)
        for c in res["cards"]:
            card = c["card"]
            secs = f"{c['seconds'][0]}–{c['seconds'][1]}" if c["seconds"] else ""
            table.add_row(
                card.get("card_id", ""),
                card.get("name", ""),
                card.get("set_id", ""),
                card.get("number", ""),
                f"{c['first_frame']}–{c['last_frame']} ({len(c['frames'])})",
                secs,
            )
        Console(stderr=json_out is None).print(table)
    if json_out:
        write_bytes_atomic(json_out, ("\n".join(lines) + "\n").encode())
    else:
        for line in lines:
            print(line)


def serve_cmd(
    model: Path = MODEL,
    db: Path = DB,
    detector: str = typer.Option("classical", help="Find cards: 'classical' or a YOLO-OBB .pt/.onnx."),
    catalog: Path | None = typer.Option(None, help="Gallery scans to serve (default: the one in db.json)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(8000, min=1, max=65535),
    max_upload_mb: float = typer.Option(20.0, min=0.01, help="Largest upload accepted (413 above)."),
    queue: int = typer.Option(8, min=1, help="Requests waiting or running at once (503 beyond)."),
    max_pixels: int | None = typer.Option(
        None, min=1, help="Largest image decoded, in pixels (default CARDID_MAX_PIXELS or 80 MP)."
    ),
    body_timeout: float = typer.Option(
        20.0, min=0.1, help="Seconds an upload's body has to arrive (408 after); no queue place meanwhile."
    ),
    allow_origin: list[str] = typer.Option(
        [],
        help="Another web origin whose pages may use /v1/live (e.g. https://scan.example.org; '*' any). "
        "Default: pages of this server only.",
    ),
) -> None:
    """Serve recognition over HTTP: the scanner page at /, POST /v1/recognize, /v1/live,
    /v1/cards/{id}, /healthz, /metrics, /docs."""
    import os

    from cardid.serve import ServeConfig, serve

    if max_pixels:
        os.environ["CARDID_MAX_PIXELS"] = str(max_pixels)  # read by every decode in this process

    config = ServeConfig(
        int(max_upload_mb * 1024 * 1024), queue, body_timeout=body_timeout, allow_origins=tuple(allow_origin)
    )
    serve(model, db, detector, catalog, host, port, config)
