"""The collection over HTTP: rows, add / edit / remove / undo, exports, and the catalog search a
collector uses to correct a card (``/v1/collection…``, ``/v1/search``)."""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime

from cardid.collection.formats import card_meta


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
    return [{"card_id": cid, **card_meta(records, cid)} for _, _, cid in hits[:limit]]


def add_collection_routes(app, served, collection, metrics, recent=None, labelled=None) -> None:
    """Register the collection routes on ``app`` (the collection: a :class:`Collection`). With
    ``recent`` photos and ``labelled`` crops, a card added with its ``photo`` token and ``index``
    is also kept as a labelled crop (``labelled.csv``), its file named in the row's ``photo``."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response

    from cardid.collection import CollectionError
    from cardid.collection.formats import FORMATS, export
    from cardid.errors import CardIDError

    def records():
        return served.recognizer.matcher.db.records

    def fail(route: str, e: Exception):
        locked = "locked" in str(e) or "read-only" in str(e)  # try again later, not a bad request
        metrics.observe(route, 503 if locked else 400)
        return JSONResponse({"error": str(e)}, status_code=503 if locked else 400)

    def answer(route: str, fn, status: int = 200):
        try:
            out = fn()
        except CollectionError as e:
            return fail(route, e)
        metrics.observe(route, status)
        return JSONResponse(out, status_code=status)

    def row_json(o) -> dict:
        return {**o.to_dict(), **card_meta(records(), o.card_id)}

    def change_json(ch) -> dict:
        return {
            "action": ch.action,
            "row": row_json(ch.row) if ch.row else None,
            "before": row_json(ch.before) if ch.before else None,
            "merged": ch.merged,
            "count": collection.count(),
        }

    async def body(request: Request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            raise CollectionError("the request body must be a JSON object") from None
        if not isinstance(data, dict):
            raise CollectionError("the request body must be a JSON object")
        return data

    @app.get("/v1/collection", summary="The collection's rows (with names, sets, numbers)")
    def rows(folder: str | None = None):
        return answer(
            "/v1/collection",
            lambda: {"rows": [row_json(o) for o in collection.rows(folder)], "count": collection.count()},
        )

    @app.post("/v1/collection", summary="Add copies of a card (merged into the same card in the same state)")
    async def add(request: Request):
        try:
            data = await body(request)
        except CollectionError as e:
            return fail("/v1/collection", e)
        card_id = str(data.pop("card_id", "") or "")
        if card_id not in records():
            metrics.observe("/v1/collection", 404)
            return JSONResponse({"error": f"unknown card {card_id!r}: not in the served DB"}, status_code=404)
        token, index, how = data.pop("photo_token", None), data.pop("index", 0), data.pop("how", "confirmed")
        if token and recent is not None and labelled is not None:
            try:  # the card as the camera saw it, labelled by the collector: a real photo to learn from
                crop = recent.crop(str(token), int(index))
                path = labelled.save(crop, card_id, f"{how} in the scanner")
                data["photo"] = str(path.relative_to(labelled.root))
            except (CardIDError, ValueError, TypeError) as e:
                return fail("/v1/collection", e)
        return answer("/v1/collection", lambda: change_json(collection.add(card_id, **data)), status=201)

    @app.patch(
        "/v1/collection/{row_id}", summary="Edit a row: quantity, condition, language, printing, folder, card"
    )
    async def edit(row_id: int, request: Request):
        try:
            data = await body(request)
            if "card_id" in data and data["card_id"] not in records():
                raise CollectionError(f"unknown card {data['card_id']!r}: not in the served DB")
        except CollectionError as e:
            return fail("/v1/collection/{id}", e)
        return answer("/v1/collection/{id}", lambda: change_json(collection.update(row_id, **data)))

    @app.delete("/v1/collection/{row_id}", summary="Remove a row")
    def remove(row_id: int):
        return answer("/v1/collection/{id}", lambda: change_json(collection.remove(row_id)))

    @app.post("/v1/collection/undo", summary="Take back the last change (whoever made it)")
    def undo():
        def go():
            ch = collection.undo()
            return {"action": None, "count": collection.count()} if ch is None else change_json(ch)

        return answer("/v1/collection/undo", go)

    @app.get(
        "/v1/collection/export", summary="The collection for TCGplayer, Collectr, Dragon Shield or cardid"
    )
    def export_route(format: str = "cardid"):
        if format not in FORMATS:
            metrics.observe("/v1/collection/export", 400)
            return JSONResponse(
                {"error": f"unknown format {format!r} (known: {', '.join(FORMATS)})"}, status_code=400
            )
        text = export(collection.rows(), records(), format)
        ext, media = ("json", "application/json") if format == "json" else ("csv", "text/csv; charset=utf-8")
        metrics.observe("/v1/collection/export", 200)
        headers = {"content-disposition": f'attachment; filename="cardid-{format}.{ext}"'}
        return Response(text.encode("utf-8"), media_type=media, headers=headers)

    @app.get("/v1/search", summary="Cards of the served DB by name, set or number (to correct a card)")
    def search(q: str = "", limit: int = 20):
        return answer("/v1/search", lambda: {"cards": search_cards(records(), q, max(1, min(limit, 100)))})
