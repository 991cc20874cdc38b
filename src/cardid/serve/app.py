"""The FastAPI app around one recognizer: routes, queueing, the live socket (see :mod:`cardid.serve`)."""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime
import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from cardid import __version__
from cardid.errors import CardIDError, ImageError
from cardid.serve.state import (
    ServeConfig,
    _Metrics,
    _multipart_file,
    _Served,
    _TooLarge,
)

if TYPE_CHECKING:
    from cardid.recognize import PhotoResult


def create_app(
    recognizer,
    catalog=None,
    config: ServeConfig = ServeConfig(),
    db_catalog: bool = False,
    collection=None,
    labelled=None,
):
    """The FastAPI app around one :class:`~cardid.recognize.Recognizer` and the catalog whose
    scans ``/v1/cards/{id}/image`` serves (``db_catalog``: the one the DB records, looked up again
    when the DB is replaced; else ``catalog`` as given, or none); with a
    :class:`~cardid.collection.Collection`, the ``/v1/collection`` routes keep what is scanned, and
    with :class:`~cardid.serve.labelled.LabelledCrops` every card added is kept as a labelled crop."""
    from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.requests import ClientDisconnect

    from cardid.recognize.video import sightings
    from cardid.track import CardTracker

    served = _Served(recognizer, catalog, db_catalog, config.reload_check_s if config.reload_db else None)
    app = FastAPI(title="cardid", version=__version__, description=__doc__)
    pool = ThreadPoolExecutor(config.workers, thread_name_prefix="cardid-recognize")
    lock = threading.Lock()  # the recognizer is used by one thread at a time
    metrics = _Metrics()
    log = logging.getLogger("cardid.serve")
    pending = 0
    recent = None
    if collection is not None and labelled is not None:
        recent = labelled.pending()  # each card's crop, cut as it is recognised, kept on disk

    def error(status: int, message: str, route: str) -> JSONResponse:
        metrics.observe(route, status)
        return JSONResponse({"error": message}, status_code=status)

    def work(data: bytes, name: str, render: bool = False, keep: bool = False) -> "tuple[PhotoResult, dict]":
        """The photo's result and its JSON answer (with the photo's size; ``render``: the photo
        annotated as a JPEG data URL, for a browser that cannot decode the upload itself;
        ``keep``: a token to cut its cards' crops from when they are added to the collection)."""
        from cardid.images import decode_rgb

        image = decode_rgb(data, name)
        with lock:
            served.refresh()
            result = served.recognizer.timed(image, config.top)
        out = result.to_json()
        out["size"] = [int(image.shape[1]), int(image.shape[0])]
        if recent is not None and keep and out["cards"]:
            out["photo"] = recent.put(image, out["cards"])
        if render:
            import cv2

            from cardid.images import jpeg_data_url
            from cardid.recognize import annotate

            small = annotate(image, out)
            scale = 1600 / max(small.shape[:2])
            if scale < 1:
                small = cv2.resize(small, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            out["rendered"] = jpeg_data_url(small, 85)
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

    async def run(body: bytes, name: str, **kw):
        """Recognise in the pool, holding a queue place; None when the queue is full."""
        nonlocal pending
        if pending >= config.queue:
            metrics.rejected += 1
            return None
        pending += 1
        try:
            job = functools.partial(work, body, name, **kw)
            return await asyncio.get_running_loop().run_in_executor(pool, job)
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
            q = request.query_params
            found = await run(body, name, render=q.get("render") in ("1", "true"), keep=True)
        except ImageError as e:
            return error(400, str(e), route)
        if found is None:
            return busy(route)
        _, out = found
        layout = request.query_params.get("binder")
        if layout:  # a binder page: each card named by its pocket, in reading order
            from cardid.recognize.binder import parse_layout, pockets

            try:
                rows, cols = parse_layout(layout)
                placed = pockets([c.get("corners") for c in out["cards"]], rows, cols)
            except CardIDError as e:
                return error(400, str(e), route)
            for c, pocket in zip(out["cards"], placed, strict=True):
                c["pocket"] = pocket
            out["binder"] = {"rows": rows, "cols": cols, "filled": sum(p is not None for p in placed)}
        metrics.observe(route, 200, time.perf_counter() - t)
        return out

    @app.get("/v1/cards/{card_id}", summary="A card's metadata")
    def card(card_id: str):
        rec = served.recognizer.matcher.db.records.get(card_id)
        if rec is None:
            return error(404, f"no card {card_id!r} in the reference DB", "/v1/cards")
        from cardid.collection.variants import variants_for

        metrics.observe("/v1/cards", 200)
        # with the printings that can exist for it (edition × finish): what a collector picks from
        return {**rec.model_dump(exclude_none=True), "variants": variants_for(rec)}

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

    if collection is not None:
        from cardid.serve.collection import add_collection_routes

        add_collection_routes(app, served, collection, metrics, recent, labelled, config.max_json_bytes)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        from importlib.resources import files

        return HTMLResponse(files("cardid").joinpath("assets/scanner.html").read_text(encoding="utf-8"))

    @app.websocket("/v1/live")
    async def live(ws: WebSocket):
        """Camera frames in (binary JPEG/PNG messages), one scene out per frame: every card, the
        tracks and their state (no_card → stabilising → confirmed), and the cards confirmed in
        this frame (once per visit). A text message ``reset`` starts a new tracker. A browser page
        of another origin is refused (403, by :mod:`cardid.serve.guard`) unless the server allows it."""
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
                if scene["confirmed"] and recent is not None:
                    from cardid.images import decode_rgb
                    from cardid.serve.labelled import keep_confirmed

                    def kept(data=data, cards=rec["cards"]):
                        return recent.put(decode_rgb(data, "frame"), cards)

                    token = await asyncio.get_running_loop().run_in_executor(pool, kept)
                    keep_confirmed(scene["confirmed"], token, rec["cards"])
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

    from cardid.serve.guard import Guard

    app.add_middleware(
        Guard,
        allow_hosts=config.allow_hosts,
        allow_origins=config.allow_origins,
        token=config.token,
        metrics=metrics,
    )
    app.state.metrics = metrics
    app.state.served = served
    return app
