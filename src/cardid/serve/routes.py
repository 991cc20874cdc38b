"""The service's routes, each group registered on the app by one function around the shared
:class:`~cardid.serve.service.Service`: photos (``/v1/recognize``), cards (``/v1/cards``), the live
camera (``/v1/live``), the page and health (``/``, ``/healthz``, ``/metrics``)."""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime
import asyncio
import logging
import time
from pathlib import Path

from cardid import __version__
from cardid.errors import CardIDError, ImageError
from cardid.serve.service import Service
from cardid.serve.state import TooLarge, multipart_file

log = logging.getLogger("cardid.serve")


def add_recognize_route(app, svc: Service) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from starlette.requests import ClientDisconnect

    config = svc.config

    @app.post("/v1/recognize", summary="Recognise every card in one photo")
    async def recognize(request: Request):
        route = "/v1/recognize"
        if svc.full():  # full now: say so before reading a body it cannot take
            return svc.busy(route)
        try:
            body = await svc.read_body(request)
        except TooLarge as e:
            return svc.error(
                413, f"upload too large: {e.size:,} bytes (limit {config.max_upload_bytes:,})", route
            )
        except asyncio.TimeoutError:
            return svc.error(
                408, f"upload too slow: the body did not arrive within {config.body_timeout:g} s", route
            )
        except ClientDisconnect:
            client = request.client.host if request.client else "?"
            log.info("upload aborted by the client (%s)", client)
            svc.metrics.observe(route, 499)  # nginx's "client closed request": nobody reads a reply
            return JSONResponse({"error": "upload aborted"}, status_code=400)
        ctype = request.headers.get("content-type", "")
        name = "upload"
        if ctype.startswith("multipart/form-data"):
            try:
                body, name = await multipart_file(request, body, config.max_upload_bytes)
            except ValueError as e:
                return svc.error(400, str(e), route)
        elif ctype and not ctype.startswith(("image/", "application/octet-stream")):
            return svc.error(
                415, f"send an image (multipart field 'file' or an image/* body), not {ctype}", route
            )
        t = time.perf_counter()
        try:
            q = request.query_params
            found = await svc.run(body, name, render=q.get("render") in ("1", "true"), keep=True)
        except ImageError as e:
            return svc.error(400, str(e), route)
        if found is None:
            return svc.busy(route)
        result, out = found
        layout = request.query_params.get("binder")
        if layout:  # a binder page: each card named by its pocket, in reading order
            from cardid.recognize.binder import parse_layout, pockets

            try:
                rows, cols = parse_layout(layout)
                placed = pockets([c.corners for c in result.cards], rows, cols)
            except CardIDError as e:
                return svc.error(400, str(e), route)
            for c, pocket in zip(out["cards"], placed, strict=True):
                c["pocket"] = pocket
            out["binder"] = {"rows": rows, "cols": cols, "filled": sum(p is not None for p in placed)}
        svc.metrics.observe(route, 200, time.perf_counter() - t)
        return out


def add_card_routes(app, svc: Service) -> None:
    from fastapi.responses import FileResponse

    served = svc.served

    @app.get("/v1/cards/{card_id}", summary="A card's metadata")
    def card(card_id: str):
        from cardid.collection.variants import variants_for

        rec = served.recognizer.matcher.db.records.get(card_id)
        if rec is None:
            return svc.error(404, f"no card {card_id[:100]!r} in the reference DB", "/v1/cards")
        svc.metrics.observe("/v1/cards", 200)
        # with the printings that can exist for it (edition × finish): what a collector picks from
        return {**rec.model_dump(exclude_none=True), "variants": variants_for(rec)}

    @app.get("/v1/cards/{card_id}/image", summary="A card's gallery scan")
    def card_image(card_id: str):
        route = "/v1/cards/image"
        cat = served.catalog
        if served.recognizer.matcher.db.records.get(card_id) is None or cat is None or card_id not in cat:
            return svc.error(404, f"no scan for card {card_id[:100]!r}", route)
        try:
            path = Path(cat.image_path(card_id))  # from the catalog by id, never from the request
        except CardIDError:
            return svc.error(404, f"no scan for card {card_id[:100]!r}", route)
        if not path.is_file():
            return svc.error(404, f"no scan for card {card_id[:100]!r}", route)
        svc.metrics.observe(route, 200)
        return FileResponse(path)


def add_live_route(app, svc: Service) -> None:
    from fastapi import WebSocket, WebSocketDisconnect

    from cardid.recognize.video import sightings
    from cardid.track import CardTracker

    config = svc.config

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
                    found = await svc.run(data, "frame")
                except ImageError as e:
                    svc.metrics.observe("/v1/live", 400)
                    await ws.send_json({"error": str(e)})
                    continue
                if found is None:  # a live frame is dropped, not queued
                    await ws.send_json({"error": "busy", "dropped": True})
                    continue
                svc.metrics.observe("/v1/live", 200, time.perf_counter() - t)
                result, rec = found
                scene = tracker.update(sightings(result, rec["cards"]))
                scene.update(cards=rec["cards"], no_card=rec["no_card"], ms=rec["ms"])
                if scene["confirmed"] and svc.recent is not None:
                    await _keep_confirmed(svc, scene, data, rec["cards"])
                await ws.send_json(scene)
        except WebSocketDisconnect:
            pass


async def _keep_confirmed(svc: Service, scene: dict, data: bytes, cards: list[dict]) -> None:
    """The frame a card was confirmed in, kept (its crops) so that adding the card saves its crop."""
    from cardid.images import decode_rgb
    from cardid.serve.labelled import keep_confirmed

    def kept():
        return svc.recent.put(decode_rgb(data, "frame"), cards)

    keep_confirmed(scene["confirmed"], await svc.in_pool(kept), cards)


def add_page_and_health_routes(app, svc: Service) -> None:
    from fastapi.responses import HTMLResponse, PlainTextResponse

    from cardid.printing.ocr import engine as ocr_engine

    served = svc.served
    # what reads collector numbers where the printing is in doubt (None: not read)
    ocr = ocr_engine() if served.recognizer.matcher.reader is not None else None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        from importlib.resources import files

        return HTMLResponse(files("cardid").joinpath("assets/scanner.html").read_text(encoding="utf-8"))

    @app.get("/healthz", summary="Liveness and what is served")
    def healthz():
        with svc.lock:
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
        return PlainTextResponse(svc.metrics.text(served.identity), media_type="text/plain; version=0.0.4")
