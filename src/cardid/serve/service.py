"""The service's shared state and its one piece of work: recognising an uploaded photo in the
worker pool, holding a queue place, under the recognizer's lock (routes: :mod:`cardid.serve.routes`)."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from cardid.serve.state import Metrics, ServeConfig, Served, read_capped

if TYPE_CHECKING:
    from cardid.recognize import PhotoResult

log = logging.getLogger("cardid.serve")


class Service:
    """What every route shares: the served recognizer (and its DB, reloaded), the limits, the
    metrics, the worker pool and its queue, and where added cards' crops are kept."""

    def __init__(self, recognizer, catalog, config: ServeConfig, db_catalog: bool, recent=None):
        self.config = config
        self.served = Served(recognizer, catalog, db_catalog, config.reload_check_s)
        self.pool = ThreadPoolExecutor(config.workers, thread_name_prefix="cardid-recognize")
        self.lock = threading.Lock()  # the recognizer is used by one thread at a time
        self.metrics = Metrics()
        self.pending = 0
        self.recent = recent  # each card's crop, cut as it is recognised, kept on disk (or None)
        from cardid.serve.repeats import Repeats

        self.repeats = Repeats(recent.root if recent is not None else None)  # photos uploaded before

    def error(self, status: int, message: str, route: str):
        from fastapi.responses import JSONResponse

        self.metrics.observe(route, status)
        return JSONResponse({"error": message}, status_code=status)

    def busy(self, route: str):
        return self.error(
            503, f"busy: {self.pending} requests in progress (queue {self.config.queue}); retry", route
        )

    def full(self) -> bool:
        """The queue is full now (counted as a rejection)."""
        if self.pending >= self.config.queue:
            self.metrics.rejected += 1
            return True
        return False

    def work(
        self, data: bytes, name: str, render: bool = False, keep: bool = False
    ) -> tuple[PhotoResult, dict]:
        """The photo's result and its JSON answer (with the photo's size; ``render``: the photo
        annotated as a JPEG data URL, for a browser that cannot decode the upload itself;
        ``keep``: a token to cut its cards' crops from when they are added to the collection, or
        ``repeat_of``, the first upload of the same photo, whose cards are not to be added again)."""
        from cardid.images import decode_rgb
        from cardid.serve.repeats import photo_key

        image = decode_rgb(data, name)
        with self.lock:
            self.served.refresh()
            result = self.served.recognizer.timed(image, self.config.top)
        out = result.to_json()
        out["size"] = [int(image.shape[1]), int(image.shape[0])]
        first = self.repeats.sighting(photo_key(image), name) if keep else None
        if first is not None:  # the same photo again: said, so that its cards are not added twice
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first["at"]))
            out["repeat_of"] = {"name": first["name"], "at": stamp}
        elif self.recent is not None and keep and result.cards:
            out["photo"] = self.recent.put(image, out["cards"])
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

    async def read_body(self, request) -> bytes:
        """The whole body, capped in size and in time; no queue place is held while it arrives."""
        return await asyncio.wait_for(
            read_capped(request, self.config.max_upload_bytes), self.config.body_timeout
        )

    async def run(self, body: bytes, name: str, **kw: Any):
        """Recognise in the pool, holding a queue place; None when the queue is full."""
        if self.full():
            return None
        self.pending += 1
        try:
            job = functools.partial(self.work, body, name, **kw)
            return await asyncio.get_running_loop().run_in_executor(self.pool, job)
        finally:
            self.pending -= 1

    async def in_pool(self, fn, *args):
        """Any other work off the event loop, in the same pool (a live confirmation's crop)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))
