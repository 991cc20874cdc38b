"""The collection over HTTP: rows, add / edit / remove / undo, exports, and the catalog search a
collector uses to correct a card (``/v1/collection…``, ``/v1/search``)."""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime

import json

from cardid.collection.fields import FIELDS
from cardid.collection.formats import card_meta
from cardid.collection.variants import variants_for


def search_cards(records, query: str, limit: int = 20) -> list[dict]:
    """Cards whose name, set or number match every word of ``query`` (case-insensitive), best
    first: an exact number or name before a partial one."""
    words = [w for w in query.lower().split() if w]
    if not words:
        return []
    hits = []
    for cid, r in records.items():
        name, set_id = (r.name or "").lower(), (r.set_id or "").lower()
        set_name, number = (getattr(r, "set_name", "") or "").lower(), str(r.number or "").lower()
        hay = f"{cid.lower()} {name} {set_id} {set_name} {number}"
        if all(w in hay for w in words):
            exact = sum(w in (name, number, set_id, cid.lower()) for w in words)
            hits.append((-exact, name, cid))
    hits.sort()
    return [
        {"card_id": cid, **card_meta(records, cid), "variants": variants_for(records.get(cid))}
        for _, _, cid in hits[:limit]
    ]


#: what a request may set on a row (its crop's file is the server's to name)
EDITABLE = tuple(f for f in FIELDS if f != "photo")
#: how a card came to be added, as the page says it (kept in ``labelled.csv``'s notes)
HOW = ("confirmed", "picked", "corrected", "searched", "live")


def add_collection_routes(
    app, served, collection, metrics, recent=None, labelled=None, max_body: int = 65536
):
    """Register the collection routes on ``app`` (the collection: a :class:`Collection`). With
    ``recent`` photos and ``labelled`` crops, a card added with its ``photo`` token and ``index``
    is also kept as a labelled crop (``labelled.csv``), its file named in the row's ``photo``.
    Bodies over ``max_body`` bytes are refused (413) before they are parsed; SQLite runs on worker
    threads, so a change waiting on the file's lock never holds up the other routes."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    from cardid.collection import CollectionError
    from cardid.collection.formats import FORMATS, export
    from cardid.errors import CardIDError
    from cardid.serve.state import TooLarge, read_capped

    def records():
        return served.recognizer.matcher.db.records

    def fail(route: str, e: Exception, status: int | None = None):
        locked = "locked" in str(e) or "read-only" in str(e)  # try again later, not a bad request
        status = status or (503 if locked else 400)
        metrics.observe(route, status)
        return JSONResponse({"error": str(e)}, status_code=status)

    async def answer(route: str, fn, status: int = 200):
        try:
            out = await run_in_threadpool(fn)
        except CollectionError as e:
            return fail(route, e)
        metrics.observe(route, status)
        return JSONResponse(out, status_code=status)

    def row_json(o) -> dict:
        # the printings that can exist for its card: what the page offers to change it to
        return {
            **o.to_dict(),
            **card_meta(records(), o.card_id),
            "variants": variants_for(records().get(o.card_id)),
        }

    def change_json(ch) -> dict:
        if labelled is not None:
            labelled.sync(collection)  # an undone, removed or corrected card's crop follows it
        return {
            "action": ch.action,
            "row": row_json(ch.row) if ch.row else None,
            "before": row_json(ch.before) if ch.before else None,
            "merged": ch.merged,
            "count": collection.count(),
        }

    async def body(request: Request) -> dict:
        try:
            data = json.loads(await read_capped(request, max_body) or b"{}")
        except (ValueError, RecursionError):
            raise CollectionError("the request body must be a JSON object") from None
        if not isinstance(data, dict):
            raise CollectionError("the request body must be a JSON object")
        return data

    async def parsed(request: Request, route: str, extra: tuple[str, ...] = ()):
        """The body as a dict of the fields a row has (and ``extra``), or the answer refusing it."""
        try:
            data = await body(request)
        except TooLarge:
            return fail(route, CollectionError(f"request body over {max_body:,} bytes"), 413)
        except CollectionError as e:
            return fail(route, e)
        unknown = sorted(set(data) - set(EDITABLE) - set(extra))
        if unknown:
            shown = ", ".join(repr(k[:40]) for k in unknown[:5])
            return fail(route, CollectionError(f"unknown field(s) {shown} (fields: {', '.join(EDITABLE)})"))
        return data

    @app.get("/v1/collection", summary="The collection's rows (with names, sets, numbers)")
    async def rows(folder: str | None = None):
        return await answer(
            "/v1/collection",
            lambda: {"rows": [row_json(o) for o in collection.rows(folder)], "count": collection.count()},
        )

    @app.post("/v1/collection", summary="Add copies of a card (merged into the same card in the same state)")
    async def add(request: Request):
        route = "/v1/collection"
        data = await parsed(request, route, ("photo_token", "index", "how"))
        if not isinstance(data, dict):
            return data
        card_id = data.pop("card_id", "")
        if not isinstance(card_id, str) or card_id not in records():
            metrics.observe(route, 404)
            shown = card_id if isinstance(card_id, str) else type(card_id).__name__
            return JSONResponse(
                {"error": f"unknown card {shown[:100]!r}: not in the served DB"}, status_code=404
            )
        token, index, how = data.pop("photo_token", None), data.pop("index", 0), data.pop("how", "confirmed")
        if how not in HOW:
            return fail(route, CollectionError(f"how must be one of {', '.join(HOW)}"))
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 10_000:
            return fail(route, CollectionError("index must be a card's place in the photo (0, 1, …)"))
        crop = None
        if token and recent is not None and labelled is not None:
            try:  # the card as the camera saw it, labelled by the collector: a real photo to learn from
                crop = recent.crop_file(str(token)[:64], index)
            except CardIDError as e:
                return fail(route, e)

        def go():
            if crop is None:
                return change_json(collection.add(card_id, **data))
            name = labelled.keep(crop)
            try:
                ch = collection.add(card_id, kept=(name, f"{how} in the scanner"), **data)
            except BaseException:
                labelled.discard(name)  # the card was not added: neither is its crop
                raise
            return change_json(ch)

        return await answer(route, go, status=201)

    @app.patch(
        "/v1/collection/{row_id}", summary="Edit a row: quantity, condition, language, printing, folder, card"
    )
    async def edit(row_id: int, request: Request):
        route = "/v1/collection/{id}"
        data = await parsed(request, route)
        if not isinstance(data, dict):
            return data
        if "card_id" in data and (not isinstance(data["card_id"], str) or data["card_id"] not in records()):
            return fail(
                route, CollectionError(f"unknown card {str(data['card_id'])[:100]!r}: not in the served DB")
            )
        return await answer(route, lambda: change_json(collection.update(row_id, **data)))

    @app.delete("/v1/collection/{row_id}", summary="Remove a row")
    async def remove(row_id: int):
        return await answer("/v1/collection/{id}", lambda: change_json(collection.remove(row_id)))

    def undo_or_redo(step):
        ch = step()
        return {"action": None, "count": collection.count()} if ch is None else change_json(ch)

    @app.post("/v1/collection/undo", summary="Take back the last change (whoever made it)")
    async def undo():
        return await answer("/v1/collection/undo", lambda: undo_or_redo(collection.undo))

    @app.post("/v1/collection/redo", summary="Make again the change undone last (until a new change)")
    async def redo():
        return await answer("/v1/collection/redo", lambda: undo_or_redo(collection.redo))

    @app.get(
        "/v1/collection/export",
        summary="The collection for TCGplayer, Collectr, Dragon Shield, TCG Collector or cardid",
    )
    async def export_route(format: str = "cardid"):
        if format not in FORMATS:
            metrics.observe("/v1/collection/export", 400)
            return JSONResponse(
                {"error": f"unknown format {format[:40]!r} (known: {', '.join(FORMATS)})"}, status_code=400
            )
        text = await run_in_threadpool(lambda: export(collection.rows(), records(), format))
        ext, media = ("json", "application/json") if format == "json" else ("csv", "text/csv; charset=utf-8")
        metrics.observe("/v1/collection/export", 200)
        headers = {"content-disposition": f'attachment; filename="cardid-{format}.{ext}"'}
        return Response(text.encode("utf-8"), media_type=media, headers=headers)

    @app.get("/v1/search", summary="Cards of the served DB by name, set or number (to correct a card)")
    def search(q: str = "", limit: int = 20):  # a worker thread's: no SQLite, the catalog in memory
        found = search_cards(records(), q[:200], max(1, min(limit, 100)))
        metrics.observe("/v1/search", 200)
        return JSONResponse({"cards": found})
