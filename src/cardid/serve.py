"""``cardid serve``: the recognition service (FastAPI), a frame in and cards out.

- ``POST /v1/recognize``: one image (multipart field ``file``, or the raw JPEG/PNG body) → the JSON
  of ``cardid recognize`` (every card, its corners, decision, top-k with names, sets, numbers).
- ``GET /v1/cards/{card_id}`` (metadata), ``GET /v1/cards/{card_id}/image`` (the gallery scan,
  looked up by id only: no request path reaches the file system).
- ``GET /healthz``, ``GET /metrics`` (Prometheus text), OpenAPI docs at ``/docs``.

The model, DB and finder load once. Recognition runs on worker threads, off the event loop; at
most ``queue`` requests wait or run at once, and one more is answered ``503`` at once rather than
growing a backlog. Uploads are capped while they stream (``413``) and decoded with the pixel limit
of :func:`cardid.io.decode_rgb` (a bomb is ``400`` before it is decoded).
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

from cardid import __version__
from cardid.errors import CardIDError, ImageError
from cardid.track import TrackerConfig

#: Latency histogram buckets (seconds) for ``/metrics``.
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class ServeConfig:
    max_upload_bytes: int = 20 * 1024 * 1024
    queue: int = 8  # requests waiting or running at once; one more gets 503
    workers: int = 1  # recognition threads
    top: int = 5
    tracker: TrackerConfig = field(default_factory=TrackerConfig)  # live mode's voting

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1 or self.queue < 1 or self.workers < 1 or self.top < 1:
            raise CardIDError("serve limits must be positive (upload size, queue, workers, top)")


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
        lines = [
            "# HELP cardid_info Model and reference DB being served.",
            "# TYPE cardid_info gauge",
            f'cardid_info{{version="{__version__}",model="{identity["model"]}",'
            f'db="{identity["db"]}",cards="{identity["cards"]}"}} 1',
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


def create_app(recognizer, catalog=None, config: ServeConfig = ServeConfig()):
    """The FastAPI app around one :class:`~cardid.recognize.Recognizer` (and the catalog whose
    scans ``/v1/cards/{id}/image`` serves, when given)."""
    from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse

    from cardid.track import CardTracker, sightings_from_record

    db = recognizer.matcher.db
    identity = {"model": db.meta["model"]["identity"], "db": str(db.root), "cards": len(db)}
    app = FastAPI(title="cardid", version=__version__, description=__doc__)
    pool = ThreadPoolExecutor(config.workers, thread_name_prefix="cardid-recognize")
    lock = threading.Lock()  # the recognizer is used by one thread at a time
    metrics = _Metrics()
    pending = 0

    def error(status: int, message: str, route: str) -> JSONResponse:
        metrics.observe(route, status)
        return JSONResponse({"error": message}, status_code=status)

    def work(data: bytes, name: str) -> dict:
        from cardid.io import decode_rgb

        image = decode_rgb(data, name)
        with lock:
            rec = recognizer.timed(image, config.top)
        out = {k: v for k, v in rec.items() if not k.startswith("_")}
        out["size"] = [int(image.shape[1]), int(image.shape[0])]
        return out

    async def read_capped(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_upload_bytes:
            raise _TooLarge(int(declared))
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > config.max_upload_bytes:
                raise _TooLarge(len(buf))
        return bytes(buf)

    @app.post("/v1/recognize", summary="Recognise every card in one photo")
    async def recognize(request: Request):
        nonlocal pending
        route = "/v1/recognize"
        if pending >= config.queue:
            metrics.rejected += 1
            return error(503, f"busy: {pending} requests in progress (queue {config.queue}); retry", route)
        pending += 1
        try:
            try:
                body = await read_capped(request)
            except _TooLarge as e:
                return error(
                    413, f"upload too large: {e.size:,} bytes (limit {config.max_upload_bytes:,})", route
                )
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
                out = await asyncio.get_running_loop().run_in_executor(pool, work, body, name)
            except ImageError as e:
                return error(400, str(e), route)
            metrics.observe(route, 200, time.perf_counter() - t)
            return out
        finally:
            pending -= 1

    @app.get("/v1/cards/{card_id}", summary="A card's metadata")
    def card(card_id: str):
        rec = db.records.get(card_id)
        if rec is None:
            return error(404, f"no card {card_id!r} in the reference DB", "/v1/cards")
        metrics.observe("/v1/cards", 200)
        return rec.model_dump(exclude_none=True)

    @app.get("/v1/cards/{card_id}/image", summary="A card's gallery scan")
    def card_image(card_id: str):
        route = "/v1/cards/image"
        if db.records.get(card_id) is None or catalog is None or card_id not in catalog:
            return error(404, f"no scan for card {card_id!r}", route)
        try:
            path = Path(catalog.image_path(card_id))  # from the catalog by id, never from the request
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
        this frame (once per visit). A text message ``reset`` starts a new tracker."""
        nonlocal pending
        await ws.accept()
        tracker = CardTracker(config.tracker)
        try:
            while True:
                msg = await ws.receive()
                if msg.get("type") == "websocket.disconnect":
                    break
                data = msg.get("bytes")
                if data is None:
                    if (msg.get("text") or "").strip() == "reset":
                        tracker = CardTracker(config.tracker)
                        await ws.send_json({"reset": True})
                    continue
                if len(data) > config.max_upload_bytes:
                    await ws.send_json({"error": f"frame too large: {len(data):,} bytes"})
                    continue
                if pending >= config.queue:  # a live frame is dropped, not queued
                    metrics.rejected += 1
                    await ws.send_json({"error": "busy", "dropped": True})
                    continue
                pending += 1
                t = time.perf_counter()
                try:
                    rec = await asyncio.get_running_loop().run_in_executor(pool, work, data, "frame")
                except ImageError as e:
                    metrics.observe("/v1/live", 400)
                    await ws.send_json({"error": str(e)})
                    continue
                finally:
                    pending -= 1
                metrics.observe("/v1/live", 200, time.perf_counter() - t)
                scene = tracker.update(sightings_from_record(rec))
                scene.update(cards=rec["cards"], no_card=rec["no_card"], ms=rec["ms"])
                await ws.send_json(scene)
        except WebSocketDisconnect:
            pass

    from cardid.printing.ocr import engine as ocr_engine

    # what reads collector numbers where the printing is in doubt (None: not read)
    ocr = ocr_engine() if recognizer.matcher.reader is not None else None

    @app.get("/healthz", summary="Liveness and what is served")
    def healthz():
        return {
            "status": "ok",
            "version": __version__,
            **identity,
            "calibrated": recognizer.matcher.calibrated,
            "ocr": ocr,
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus():
        return PlainTextResponse(metrics.text(identity), media_type="text/plain; version=0.0.4")

    app.state.metrics = metrics
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
    from cardid.eval.evaluate import open_gallery
    from cardid.recognize import Recognizer

    rec = Recognizer.open(model, db, detector)
    cat = None
    source = catalog or rec.matcher.db.meta.get("catalog")
    if source:
        try:
            cat = open_gallery(source)
        except CardIDError as e:
            if catalog:  # asked for explicitly: an error; else the scans are just not served
                raise
            logging.getLogger(__name__).warning("gallery scans not served: %s", e)
    uvicorn.run(create_app(rec, cat, config), host=host, port=port, log_level="info")
