"""``cardid serve``: the recognition service and the browser scanner."""

from __future__ import annotations

from pathlib import Path

import typer


def serve_cmd(
    bundle: Path | None = typer.Argument(
        None, help="A bundle (cardid pipeline run): model, DB, finder and settings."
    ),
    model: Path | None = typer.Option(None, help="The embedding artefact (without a bundle)."),
    db: Path | None = typer.Option(None, "--db", help="A reference DB directory (without a bundle)."),
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
    collection: Path | None = typer.Option(
        None,
        help="Where scanned cards are kept (SQLite; default: ~/.local/share/cardid/collection.sqlite).",
    ),
    keep_photos: bool = typer.Option(
        True,
        help="Keep each added card's crop with its label (labelled/ beside the collection) to learn from.",
    ),
    allow_origin: list[str] = typer.Option(
        [],
        help="Another web origin whose pages may change the collection and use /v1/live "
        "(e.g. https://scan.example.org; '*' any). Default: pages of this server only.",
    ),
    allow_host: list[str] = typer.Option(
        [],
        help="A host name to answer besides addresses, localhost and this machine's name "
        "(e.g. scanner.lan; '*' any). Others get 421: no DNS rebinding.",
    ),
    token: str | None = typer.Option(
        None,
        envvar="CARDID_TOKEN",
        help="Asked of every route but /healthz. Default: none on 127.0.0.1; a new one, printed "
        "in the link to open, when bound beyond this machine (--host 0.0.0.0).",
    ),
) -> None:
    """Serve recognition over HTTP: the scanner page at /, POST /v1/recognize, /v1/live,
    /v1/cards/{id}, /healthz, /metrics, /docs."""
    import os

    from cardid.bundle import bundle_or_parts
    from cardid.serve import ServeConfig, serve

    bundle_or_parts(bundle, model, db, "BUNDLE")
    if max_pixels:
        os.environ["CARDID_MAX_PIXELS"] = str(max_pixels)  # read by every decode in this process

    from cardid.serve.guard import is_loopback, new_token

    if token is None and not is_loopback(host):
        token = new_token()  # anyone on the network could reach it: ask for this one
    config = ServeConfig(
        int(max_upload_mb * 1024 * 1024),
        queue,
        body_timeout=body_timeout,
        allow_origins=tuple(allow_origin),
        allow_hosts=tuple(allow_host),
        token=token or None,
    )
    serve(
        model,
        db,
        detector,
        catalog,
        host,
        port,
        config,
        bundle=bundle,
        collection=collection,
        keep_photos=keep_photos,
    )
