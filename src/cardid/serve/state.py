"""The service's state and small parts: its limits, its metrics, the served recognizer (loaded
again when the DB on disk is replaced), origin checks and multipart parsing."""

import logging
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

from cardid import __version__
from cardid.errors import CardIDError
from cardid.track import TrackerConfig

log = logging.getLogger("cardid.serve")

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
    allow_origins: tuple[str, ...] = ()  # other web origins whose pages may change things ("*": any)
    allow_hosts: tuple[str, ...] = ()  # host names answered besides addresses, localhost, this machine
    token: str | None = None  # asked of every route but /healthz (bound beyond this machine)
    max_json_bytes: int = 64 * 1024  # a collection change's body (413 above)
    #: how often a request looks whether the DB was replaced on disk (``math.inf``: never, as for a
    #: bundle, served as its hashes verified it)
    reload_check_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1 or self.queue < 1 or self.workers < 1 or self.top < 1:
            raise CardIDError("serve limits must be positive (upload size, queue, workers, top)")
        if self.body_timeout <= 0:
            raise CardIDError("body_timeout must be positive seconds")


def _label(value) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
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


class Served:
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
        # the DB by its folder's name: no client learns where files lie on this machine
        return {"model": db.meta["model"]["identity"], "db": Path(db.root).name, "cards": len(db)}

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
        from cardid.db.store import CardDB
        from cardid.decision.match import Matcher

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
        self.recognizer = self.recognizer.with_matcher(matcher)
        self.catalog, self.stamp = catalog, stamp
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
        log.warning("gallery scans not served: %s", e)
        return None


class TooLarge(Exception):
    def __init__(self, size: int):
        self.size = size


async def read_capped(request, limit: int) -> bytes:
    """A request's whole body, refused (:class:`TooLarge`) once it declares or sends over ``limit``
    bytes: nothing larger is ever held."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(int(declared))
    buf = bytearray()
    async for chunk in request.stream():
        buf.extend(chunk)
        if len(buf) > limit:
            raise TooLarge(len(buf))
    return bytes(buf)


async def multipart_file(request, body: bytes, limit: int) -> tuple[bytes, str]:
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
