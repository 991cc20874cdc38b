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
stream (``413``) and decoded with the pixel limit of :func:`cardid.io.decode_rgb` (a bomb is
``400`` before it is decoded). ``/v1/live`` accepts browser pages of this server's own origin
only, unless ``allow_origins`` names others.
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime
import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cardid import __version__
from cardid.errors import CardIDError, ImageError
from cardid.track import TrackerConfig

if TYPE_CHECKING:
    from cardid.recognize import PhotoResult

#: Latency histogram buckets (seconds) for ``/metrics``.
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class ServeConfig:
    max_upload_bytes: int = 20 * 1024 * 1024
    queue: int = 8  # requests waiting or running at once; one more gets 503
    workers: int = 1  # recognition threads
    top: int = 5
    tracker: TrackerConfig = field(default_factory=TrackerConfig)  # live mode's voting
    body_timeout: float = 20.0  # seconds an upload's body has to arrive (then 408)
    allow_origins: tuple[str, ...] = ()  # other web origins that may open /v1/live ("*": any)
    reload_check_s: float = 1.0  # how often a request looks whether the DB was replaced on disk

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1 or self.queue < 1 or self.workers < 1 or self.top < 1:
            raise CardIDError("serve limits must be positive (upload size, queue, workers, top)")
        if self.body_timeout <= 0:
            raise CardIDError("body_timeout must be positive seconds")


def _label(value) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.hist = [0] * (len(BUCKETS) + 1)
        self.total_s = 0.0
        self.count = 0
        self.rejected = 0

    def observe(self, route: str, status: int, seconds: float | None = None) -> None:
        with self.lock:
            self.requests[(route, status)] = self.requests.get((route, status), 0) + 1
            if seconds is not None:
                self.count += 1
                self.total_s += seconds
                i = next((k for k, b in enumerate(BUCKETS) if seconds <= b), len(BUCKETS))
                self.hist[i] += 1

    def text(self, identity: dict) -> str:
        info = {
            "version": __version__,
            "model": identity["model"],
            "db": identity["db"],
            "cards": identity["cards"],
        }
        labels = ",".join(f'{k}="{_label(v)}"' for k, v in info.items())
        lines = [
            "# HELP cardid_info Model and reference DB being served.",
            "# TYPE cardid_info gauge",
            f"cardid_info{{{labels}}} 1",
            "# HELP cardid_requests_total Requests by route and status.",
            "# TYPE cardid_requests_total counter",
        ]
        with self.lock:
            for (route, status), n in sorted(self.requests.items()):
                lines.append(f'cardid_requests_total{{route="{route}",status="{status}"}} {n}')
            lines += [
                "# HELP cardid_recognize_seconds Time to recognise one image.",
                "# TYPE cardid_recognize_seconds histogram",
            ]
            acc = 0
            for b, n in zip((*BUCKETS, float("inf")), self.hist, strict=True):
                acc += n
                le = "+Inf" if b == float("inf") else f"{b}"
                lines.append(f'cardid_recognize_seconds_bucket{{le="{le}"}} {acc}')
            lines.append(f"cardid_recognize_seconds_sum {self.total_s:.6f}")
            lines.append(f"cardid_recognize_seconds_count {self.count}")
            lines += [
                "# HELP cardid_rejected_total Requests refused because the queue was full.",
                "# TYPE cardid_rejected_total counter",
                f"cardid_rejected_total {self.rejected}",
            ]
        return "\n".join(lines) + "\n"


class _Served:
    """What is served: the recognizer and its gallery scans, loaded again when the DB on disk is
    replaced (``index add`` writes a new folder; ``calibrate`` a new ``db.json``). The old ones
    keep answering until the new ones have loaded; a DB that fails to load is reported, not served."""

    def __init__(self, recognizer, catalog, db_catalog: bool, check_every: float):
        """``db_catalog``: serve the scans of the catalogs the DB records (looked up again with
        each DB); else ``catalog`` as given (or none)."""
        self.recognizer = recognizer
        self.explicit_catalog = not db_catalog
        self.catalog = _gallery(recognizer.matcher.db) if db_catalog else catalog
        self.check_every = check_every
        self.stamp = _db_stamp(recognizer.matcher.db.root)
        self.checked = time.monotonic()
        self.reloads = 0
        self.reload_error: str | None = None
        self.identity = self._identity()

    def _identity(self) -> dict:
        db = self.recognizer.matcher.db
        return {"model": db.meta["model"]["identity"], "db": str(db.root), "cards": len(db)}

    def refresh(self) -> None:
        """Load the DB again if ``db.json`` changed on disk (called under the recognizer's lock)."""
        now = time.monotonic()
        if now - self.checked < self.check_every:
            return
        self.checked = now
        old = self.recognizer.matcher
        stamp = _db_stamp(old.db.root)
        if stamp is None or stamp == self.stamp:  # None: mid-replace (or gone); look again later
            return
        from cardid.db.match import Matcher
        from cardid.db.store import CardDB

        log = logging.getLogger(__name__)
        try:
            db = CardDB.load(old.db.root, old.embedder)
            matcher = Matcher(db, old.embedder, old.config)
            catalog = self.catalog if self.explicit_catalog else _gallery(db)
        except CardIDError as e:
            self.stamp = stamp  # not again until it changes once more
            self.reload_error = (
                f"the DB on disk changed but does not load ({e}); still serving the one loaded before"
            )
            log.warning(self.reload_error)
            return
        self.recognizer.matcher, self.catalog, self.stamp = matcher, catalog, stamp
        self.reloads += 1
        self.reload_error = None
        self.identity = self._identity()
        log.info("reference DB %s loaded again: %d cards", db.root, len(db))


def _db_stamp(root: Path) -> tuple[int, int, int] | None:
    try:
        st = (Path(root) / "db.json").stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino, st.st_size


def _gallery(db):
    """The DB's gallery scans for thumbnails, or None (then thumbnails are 404, nothing else)."""

    try:
        return db.gallery()
    except CardIDError as e:
        logging.getLogger(__name__).warning("gallery scans not served: %s", e)
        return None


def _same_origin(origin: str, host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a browser page at ``origin`` may open the live socket of the server at ``host``."""
    from urllib.parse import urlsplit

    if "*" in allowed or origin.rstrip("/") in {a.rstrip("/") for a in allowed}:
        return True
    return urlsplit(origin).netloc.lower() == host.lower()


def create_app(recognizer, catalog=None, config: ServeConfig = ServeConfig(), db_catalog: bool = False):
    """The FastAPI app around one :class:`~cardid.recognize.Recognizer` and the catalog whose
    scans ``/v1/cards/{id}/image`` serves (``db_catalog``: the one the DB records, looked up again
    when the DB is replaced; else ``catalog`` as given, or none)."""
    from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.requests import ClientDisconnect

    from cardid.track import CardTracker, sightings

    served = _Served(recognizer, catalog, db_catalog, config.reload_check_s)
    app = FastAPI(title="cardid", version=__version__, description=__doc__)
    pool = ThreadPoolExecutor(config.workers, thread_name_prefix="cardid-recognize")
    lock = threading.Lock()  # the recognizer is used by one thread at a time
    metrics = _Metrics()
    log = logging.getLogger(__name__)
    pending = 0

    def error(status: int, message: str, route: str) -> JSONResponse:
        metrics.observe(route, status)
        return JSONResponse({"error": message}, status_code=status)

    def work(data: bytes, name: str) -> "tuple[PhotoResult, dict]":
        """The photo's result and its JSON answer (with the photo's size)."""
        from cardid.io import decode_rgb

        image = decode_rgb(data, name)
        with lock:
            served.refresh()
            result = served.recognizer.timed(image, config.top)
        out = result.to_json()
        out["size"] = [int(image.shape[1]), int(image.shape[0])]
        return result, out

    async def read_body(request: Request) -> bytes:
        """The whole body, capped in size and in time; no queue place is held while it arrives."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_upload_bytes:
            raise _TooLarge(int(declared))
        buf = bytearray()

        async def receive() -> None:
            async for chunk in request.stream():
                buf.extend(chunk)
                if len(buf) > config.max_upload_bytes:
                    raise _TooLarge(len(buf))

        await asyncio.wait_for(receive(), config.body_timeout)
        return bytes(buf)

    async def run(body: bytes, name: str):
        """Recognise in the pool, holding a queue place; None when the queue is full."""
        nonlocal pending
        if pending >= config.queue:
            metrics.rejected += 1
            return None
        pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, work, body, name)
        finally:
            pending -= 1

    def busy(route: str) -> JSONResponse:
        return error(503, f"busy: {pending} requests in progress (queue {config.queue}); retry", route)

    @app.post("/v1/recognize", summary="Recognise every card in one photo")
    async def recognize(request: Request):
        route = "/v1/recognize"
        if pending >= config.queue:  # full now: say so before reading a body it cannot take
            metrics.rejected += 1
            return busy(route)
        try:
            body = await read_body(request)
        except _TooLarge as e:
            return error(
                413, f"upload too large: {e.size:,} bytes (limit {config.max_upload_bytes:,})", route
            )
        except asyncio.TimeoutError:
            return error(
                408, f"upload too slow: the body did not arrive within {config.body_timeout:g} s", route
            )
        except ClientDisconnect:
            client = request.client.host if request.client else "?"
            log.info("upload aborted by the client (%s)", client)
            metrics.observe(route, 499)  # nginx's "client closed request": nobody reads a reply
            return JSONResponse({"error": "upload aborted"}, status_code=400)
        ctype = request.headers.get("content-type", "")
        name = "upload"
        if ctype.startswith("multipart/form-data"):
            try:
                body, name = await _multipart_file(request, body, config.max_upload_bytes)
            except ValueError as e:
                return error(400, str(e), route)
        elif ctype and not ctype.startswith(("image/", "application/octet-stream")):
            return error(
                415, f"send an image (multipart field 'file' or an image/* body), not {ctype}", route
            )
        t = time.perf_counter()
        try:
            found = await run(body, name)
        except ImageError as e:
            return error(400, str(e), route)
        if found is None:
            return busy(route)
        _, out = found
        metrics.observe(route, 200, time.perf_counter() - t)
        return out

    @app.get("/v1/cards/{card_id}", summary="A card's metadata")
    def card(card_id: str):
        rec = served.recognizer.matcher.db.records.get(card_id)
        if rec is None:
            return error(404, f"no card {card_id!r} in the reference DB", "/v1/cards")
        metrics.observe("/v1/cards", 200)
        return rec.model_dump(exclude_none=True)

    @app.get("/v1/cards/{card_id}/image", summary="A card's gallery scan")
    def card_image(card_id: str):
        route = "/v1/cards/image"
        cat = served.catalog
        if served.recognizer.matcher.db.records.get(card_id) is None or cat is None or card_id not in cat:
            return error(404, f"no scan for card {card_id!r}", route)
        try:
            path = Path(cat.image_path(card_id))  # from the catalog by id, never from the request
        except CardIDError:
            return error(404, f"no scan for card {card_id!r}", route)
        if not path.is_file():
            return error(404, f"no scan for card {card_id!r}", route)
        metrics.observe(route, 200)
        return FileResponse(path)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        from importlib.resources import files

        return HTMLResponse(files("cardid").joinpath("assets/scanner.html").read_text(encoding="utf-8"))

    @app.websocket("/v1/live")
    async def live(ws: WebSocket):
        """Camera frames in (binary JPEG/PNG messages), one scene out per frame: every card, the
        tracks and their state (no_card → stabilising → confirmed), and the cards confirmed in
        this frame (once per visit). A text message ``reset`` starts a new tracker. A browser page
        of another origin is refused (403) unless the server allows that origin."""
        origin = ws.headers.get("origin")
        if origin and not _same_origin(origin, ws.headers.get("host", ""), config.allow_origins):
            log.warning("/v1/live refused a page of another origin: %s", origin)
            metrics.observe("/v1/live", 403)
            await ws.close(code=1008)  # before accept: the handshake is answered 403
            return
        await ws.accept()
        tracker = CardTracker(config.tracker, keep_history=False)  # a live socket may run for hours
        try:
            while True:
                msg = await ws.receive()
                if msg.get("type") == "websocket.disconnect":
                    break
                data = msg.get("bytes")
                if data is None:
                    if (msg.get("text") or "").strip() == "reset":
                        tracker = CardTracker(config.tracker, keep_history=False)
                        await ws.send_json({"reset": True})
                    continue
                if len(data) > config.max_upload_bytes:
                    await ws.send_json({"error": f"frame too large: {len(data):,} bytes"})
                    continue
                t = time.perf_counter()
                try:
                    found = await run(data, "frame")
                except ImageError as e:
                    metrics.observe("/v1/live", 400)
                    await ws.send_json({"error": str(e)})
                    continue
                if found is None:  # a live frame is dropped, not queued
                    await ws.send_json({"error": "busy", "dropped": True})
                    continue
                metrics.observe("/v1/live", 200, time.perf_counter() - t)
                result, rec = found
                scene = tracker.update(sightings(result, rec["cards"]))
                scene.update(cards=rec["cards"], no_card=rec["no_card"], ms=rec["ms"])
                await ws.send_json(scene)
        except WebSocketDisconnect:
            pass

    from cardid.printing.ocr import engine as ocr_engine

    # what reads collector numbers where the printing is in doubt (None: not read)
    ocr = ocr_engine() if recognizer.matcher.reader is not None else None

    @app.get("/healthz", summary="Liveness and what is served")
    def healthz():
        with lock:
            served.refresh()
        out = {
            "status": "ok",
            "version": __version__,
            **served.identity,
            "calibrated": served.recognizer.matcher.calibrated,
            "ocr": ocr,
            "db_reloads": served.reloads,
        }
        if served.reload_error:
            out["db_reload_error"] = served.reload_error
        return out

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus():
        return PlainTextResponse(metrics.text(served.identity), media_type="text/plain; version=0.0.4")

    app.state.metrics = metrics
    app.state.served = served
    return app


class _TooLarge(Exception):
    def __init__(self, size: int):
        self.size = size


async def _multipart_file(request, body: bytes, limit: int) -> tuple[bytes, str]:
    """The ``file`` field of a multipart body already read (and capped)."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def once() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(
            request.headers, once(), max_files=1, max_fields=4, max_part_size=limit
        ).parse()
    except MultiPartException as e:
        raise ValueError(f"malformed multipart upload ({e.message})") from e
    f = form.get("file")
    if f is None or isinstance(f, str):
        raise ValueError("multipart upload without a 'file' field")
    data = await f.read()
    return data, f.filename or "upload"


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
) -> None:
    """Load everything once, then serve until interrupted."""
    try:
        import uvicorn
    except ImportError as e:
        raise CardIDError("cardid serve needs FastAPI and uvicorn: pip install 'cardid[serve]'") from e
    from cardid.catalog.records import Catalog
    from cardid.recognize import Recognizer

    rec = Recognizer.open(model, db, detector)
    cat = Catalog.open(catalog) if catalog else None  # asked for explicitly: an error if it is not
    app = create_app(rec, cat, config, db_catalog=catalog is None)
    uvicorn.run(app, host=host, port=port, log_level="info")
