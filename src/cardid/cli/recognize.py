"""``cardid recognize``: photos, folders, lists or videos → JSON lines, a table, pictures."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cardid.errors import CardIDError

out = Console()


def recognize_cmd(
    images: list[str] = typer.Argument(
        ..., help="Photos (with --detector) or card crops: files, folders, globs, a CSV of paths, or videos."
    ),
    model: Path | None = typer.Option(
        None, help="The embedding artefact: a model directory or ONNX (or --bundle)."
    ),
    db: Path | None = typer.Option(None, "--db", help="A reference DB directory (or --bundle)."),
    bundle: Path | None = typer.Option(
        None, help="A bundle (cardid pipeline run): its model, DB, card finder and decision settings."
    ),
    crops: bool = typer.Option(
        False, "--crops", help="With --bundle: each image is one card crop (no finder)."
    ),
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
    from cardid.bundle import bundle_or_parts
    from cardid.decision.match import MatchConfig
    from cardid.recognize import Recognizer, expand_inputs, is_video, make_detector

    bundle_or_parts(bundle, model, db)
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
    skipped: list[Path] = []
    paths = expand_inputs(images, exclude=[p for p in (show, json_out) if p], skipped=skipped)
    if skipped:  # stderr: stdout may be the JSON lines
        kinds = sorted({p.suffix.lower() or "(no extension)" for p in skipped})
        Console(stderr=True).print(
            f"note: {len(skipped)} file(s) in the folders given are not photos and were skipped "
            f"({', '.join(kinds[:6])}); name a file to try it anyway",
            highlight=False,
            markup=False,
        )
    videos = [p for p in paths if is_video(p)]
    if videos and len(videos) != len(paths):
        raise CardIDError("give either photos or videos, not both in one call")
    b = None
    if bundle is not None:
        from cardid.bundle import load_bundle

        b = load_bundle(bundle)  # checked file by file before anything runs
        if not detector and (videos or not crops):
            detector, conf = b.detector, b.conf  # the finder the bundle was evaluated with
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
    if b is not None:
        rec = Recognizer.open(
            b.model, b.db, det, b.match_config(verify=verify, read_numbers=read_numbers), fallback
        )
    else:
        config = MatchConfig(verify=verify, read_numbers=read_numbers)
        rec = Recognizer.open(model, db, det, config, fallback=fallback)
    if videos:
        _recognize_videos(rec, videos, top, every, json_out, resume)
        return
    _recognize_photos(
        rec, paths, json_out, resume, top=top, workers=workers, strict=strict, show=show, catalog=catalog
    )


#: Above this many photos the per-card table is replaced by a summary line.
TABLE_ROWS = 50


def _recognize_photos(rec, paths: list[Path], json_out: Path | None, resume: bool, **kw) -> None:
    """`cardid recognize` on photos: the JSON lines to ``json_out`` (continued with ``resume``) or
    stdout, a table or a summary line, and what the user should know."""
    from cardid.io import write_bytes_atomic
    from cardid.progress import progress
    from cardid.recognize import photo_key, read_results
    from cardid.recognize.batch import recognize_photos

    card_db = rec.matcher.db
    done: set[Path] = set()
    if resume and json_out.is_file():
        keep, done, notes = read_results(json_out, card_db.meta["model"]["identity"])
        for note in notes:
            Console(stderr=True).print(f"[yellow]note:[/] {note}", highlight=False)
        if notes:  # errors and a torn line are replaced by this run's records, not appended to
            write_bytes_atomic(json_out, "".join(line + "\n" for line in keep).encode("utf-8"))
    show = kw.get("show")
    if show and rec.detector is None:
        try:
            kw["catalog"] = card_db.gallery(kw.get("catalog"))
        except CardIDError as e:  # the picture still shows the query and the names
            kw["catalog"] = None
            Console(stderr=True).print(f"[yellow]gallery scans unavailable for --show:[/] {e}")
    else:
        kw["catalog"] = None
    stream = json_out.open("a" if resume else "w", encoding="utf-8") if json_out else None

    def sink(record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False)
        if stream:
            stream.write(line + "\n")
            stream.flush()
        else:
            print(line)

    todo = len([p for p in paths if photo_key(p) not in done])
    try:
        with progress(todo, "recognising", enabled=todo > 1) as advance:
            summary = recognize_photos(rec, paths, sink, done=done, progress=advance, keep=TABLE_ROWS, **kw)
    finally:
        if stream:
            stream.close()
    results, n, errors, first_error = summary.first, summary.written, summary.errors, summary.first_error
    console = Console(stderr=json_out is None)
    if n <= TABLE_ROWS:
        console.print(_table(results, len(card_db)))
    else:
        console.print(f"{n} image(s) recognised against {len(card_db)} cards ({errors} unreadable)")
    if resume and json_out.is_file():
        console.print(
            f"resumed: {len(paths) - todo} of {len(paths)} photo(s) were already in {json_out} and skipped"
        )
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


def _recognize_videos(
    rec, videos: list[Path], top: int, every: int, json_out: Path | None, resume: bool = False
) -> None:
    """One JSON line per video; ``resume``: the videos already in ``json_out`` are kept and
    skipped, the others appended (a record is never lost to a rerun)."""
    import cv2

    from cardid.io import write_bytes_atomic
    from cardid.progress import progress
    from cardid.recognize import photo_key, recognize_video

    lines: list[str] = []
    if resume and json_out and json_out.is_file():
        lines, done = _done_videos(json_out)
        skipped = [v for v in videos if photo_key(v) in done]
        videos = [v for v in videos if photo_key(v) not in done]
        if skipped:
            Console(stderr=True).print(f"resumed: {len(skipped)} video(s) already in {json_out} were skipped")
    for v in videos:
        cap = cv2.VideoCapture(str(v))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) // every
        cap.release()
        with progress(total or None, f"recognising {Path(v).name}") as advance:
            res = recognize_video(rec, v, every, top=top, progress=advance)
        lines.append(json.dumps({**res, "path": str(photo_key(v))}, ensure_ascii=False))
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


def _done_videos(json_out: Path) -> tuple[list[str], set[Path]]:
    """The lines of an earlier video run and the videos they cover (by where each video is)."""
    from cardid.recognize import photo_key

    lines, done = [], set()
    for i, line in enumerate(json_out.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            raise CardIDError(f"{json_out} line {i} is not JSON: cannot resume from it") from None
        if not isinstance(r, dict) or not isinstance(r.get("video", r.get("path")), str):
            raise CardIDError(f"{json_out} line {i} is not a cardid video record: cannot resume from it")
        lines.append(line)
        done.add(photo_key(r.get("path") or r["video"]))
    return lines, done
