"""The FastAPI app around one recognizer: the shared service, its routes and the guard in front
of them (see :mod:`cardid.serve`)."""

from __future__ import annotations

from cardid import __version__
from cardid.serve.state import ServeConfig


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
    from fastapi import FastAPI

    from cardid.serve.guard import Guard
    from cardid.serve.routes import (
        add_card_routes,
        add_live_route,
        add_page_and_health_routes,
        add_recognize_route,
    )
    from cardid.serve.service import Service

    recent = labelled.pending() if collection is not None and labelled is not None else None
    svc = Service(recognizer, catalog, config, db_catalog, recent)
    app = FastAPI(title="cardid", version=__version__, description=__doc__)
    add_recognize_route(app, svc)
    add_card_routes(app, svc)
    if collection is not None:
        from cardid.serve.collection import add_collection_routes

        add_collection_routes(
            app, svc.served, collection, svc.metrics, recent, labelled, config.max_json_bytes
        )
    add_live_route(app, svc)
    add_page_and_health_routes(app, svc)
    app.add_middleware(
        Guard,
        allow_hosts=config.allow_hosts,
        allow_origins=config.allow_origins,
        token=config.token,
        metrics=svc.metrics,
    )
    app.state.metrics = svc.metrics
    app.state.served = svc.served
    return app
