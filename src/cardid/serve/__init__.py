"""``cardid serve``: the recognition service (FastAPI), a frame in and cards out.

- ``POST /v1/recognize``: one image (multipart field ``file``, or the raw JPEG/PNG body) → the JSON
  of ``cardid recognize`` (every card, its corners, decision, top-k with names, sets, numbers).
- ``GET /v1/cards/{card_id}`` (metadata), ``GET /v1/cards/{card_id}/image`` (the gallery scan,
  looked up by id only: no request path reaches the file system).
- ``GET /healthz``, ``GET /metrics`` (Prometheus text), OpenAPI docs at ``/docs``.

The model, DB and finder load once; a DB replaced on disk (``cardid index add``, ``calibrate``)
is loaded again at the next request, and ``/healthz`` says which one is served. Recognition runs
on worker threads, off the event loop; at most ``queue`` requests wait or run at once, and one
more is answered ``503`` at once rather than growing a backlog. A request takes its place in that
queue only once its whole body has arrived, and a body has ``body_timeout`` seconds to arrive
(``408``): clients that open uploads and send nothing hold no place. Uploads are capped while they
stream (``413``) and decoded with the pixel limit of :func:`cardid.images.decode_rgb` (a bomb is
``400`` before it is decoded). ``/v1/live`` accepts browser pages of this server's own origin
only, unless ``allow_origins`` names others; :mod:`cardid.serve.guard` says who may talk to it.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from cardid.errors import CardIDError
from cardid.serve.app import create_app
from cardid.serve.state import ServeConfig

__all__ = ["ServeConfig", "create_app", "free_port", "serve", "wait_ready"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for tests, benchmarks, a second server)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_ready(url: str, seconds: float = 60.0) -> bool:
    """Poll ``url``/healthz until the service answers 200 (True) or ``seconds`` pass (False)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url.rstrip("/") + "/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


def serve(
    model: str | Path,
    db: str | Path,
    detector: str | None = "classical",
    catalog: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig = ServeConfig(),
    bundle: str | Path | None = None,
    collection: str | Path | None = None,
    keep_photos: bool = True,
) -> None:
    """Load everything once (from ``bundle`` when given: checked file by file), then serve until
    interrupted."""
    try:
        import uvicorn
    except ImportError as e:
        raise CardIDError("cardid serve needs FastAPI and uvicorn: pip install 'cardid[serve]'") from e
    from cardid.catalog.records import Catalog
    from cardid.recognize import Recognizer

    cat = Catalog.open(catalog) if catalog else None  # asked for explicitly: an error if it is not
    from cardid.collection import Collection, default_path

    where = Path(collection or default_path()).resolve()
    if bundle is not None:
        from dataclasses import replace

        from cardid.bundle import load_bundle

        b = load_bundle(bundle)
        if b.root.resolve() in where.parents:  # a bundle stays as built: it would not load again
            raise CardIDError(f"--collection {collection} is inside the bundle {b.root}; keep it elsewhere")
        rec = b.recognizer()
        # served as verified: a bundle's DB edited on disk is never loaded again behind its hashes
        config = replace(config, reload_check_s=math.inf)
        cat = cat or b.gallery()  # the scans it carries: a copied bundle shows them too
    else:
        rec = Recognizer.open(model, db, detector)
    # what is scanned is kept, in the user's data dir unless told (never inside a bundle or a run)
    kept = Collection(where)
    logging.getLogger("cardid.serve").info("collection: %s (%d cards)", kept.path, kept.count())
    labelled = None
    if keep_photos:  # each card added: its crop and label, a real photo set beside the collection
        from cardid.serve.labelled import LabelledCrops

        labelled = LabelledCrops(kept.path.parent / "labelled")
    app = create_app(rec, cat, config, db_catalog=cat is None, collection=kept, labelled=labelled)
    if config.token:  # the one link that opens the page (then kept as a cookie)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(f"open http://{shown}:{port}/?token={config.token} (or this machine's address in its place)")
    uvicorn.run(app, host=host, port=port, log_level="info")
