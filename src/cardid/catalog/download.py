"""Fetch every card's scan: bounded concurrency, retries with backoff, resume, atomic writes."""

from __future__ import annotations

import http.client
import io
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cardid.catalog.records import Catalog
from cardid.images import max_pixels, pil_open
from cardid.io import inside, write_bytes_atomic, write_json_atomic

FAILURES_FILE = "download_failures.json"
USER_AGENT = "cardid-downloader/0.1 (+https://github.com/cardid)"
_RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}
#: No card scan is this large; a bigger body is refused while it streams, never buffered whole.
MAX_BYTES = 50 * 1024 * 1024


@dataclass
class DownloadReport:
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def is_complete_image(path: Path) -> bool:
    """A file counts as downloaded only if it exists, is within the pixel limit and decodes as an
    image (a bomb or a torn file already on disk is fetched again, never a crash)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        with pil_open(path) as im:
            if im.width * im.height > max_pixels():
                return False
            im.verify()
        return True
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


class _Fatal(Exception):
    """A failure that retrying cannot fix (too large, wrong scheme, not an image)."""


class _HTTPOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise _Fatal(f"redirect to a non-HTTP URL refused: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HTTPOnlyRedirects())


def _read_capped(r, max_bytes: int, deadline: float) -> bytes:
    declared = r.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _Fatal(f"response too large: {int(declared):,} bytes (limit {max_bytes:,})")
    buf = bytearray()
    read = getattr(r, "read1", r.read)  # read1: whatever has arrived, so the deadline is checked
    while chunk := read(1 << 16):
        buf += chunk
        if len(buf) > max_bytes:
            raise _Fatal(f"response too large: over {max_bytes:,} bytes")
        if time.monotonic() > deadline:
            raise TimeoutError("no complete response before the deadline")
    if declared is not None and declared.isdigit() and int(declared) != len(buf):
        raise OSError(f"truncated body: {len(buf)} of {declared} bytes")
    return bytes(buf)


def fetch(
    url: str,
    timeout: float,
    retries: int,
    backoff: float,
    max_bytes: int = MAX_BYTES,
    deadline: float | None = None,
) -> bytes:
    """GET an http(s) ``url``: at most ``max_bytes``, within ``deadline`` seconds per attempt
    (default 4 × ``timeout``: a server that drips a byte at a time still ends), retrying transient
    failures (network, torn bodies, 5xx, 429) with exponential backoff."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise RuntimeError(f"only http(s) URLs are fetched, not {url!r}")
    per_attempt = deadline if deadline is not None else 4 * timeout
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with _OPENER.open(req, timeout=timeout) as r:
                data = _read_capped(r, max_bytes, time.monotonic() + per_attempt)
            with pil_open(io.BytesIO(data)) as im:
                if im.width * im.height > max_pixels():
                    raise _Fatal(f"image too large: {im.width}×{im.height} px")
                im.verify()
            return data
        except _Fatal as e:
            last = e
            break
        except urllib.error.HTTPError as e:
            last = e
            if e.code not in _RETRYABLE_HTTP:
                break
        except (UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as e:
            last = ValueError(f"response is not an image ({e})")
            break
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
            last = e  # IncompleteRead and other torn responses are HTTPExceptions: retried
    raise RuntimeError(str(last))


def download_images(
    catalog: Catalog,
    workers: int = 8,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 0.5,
    progress: Callable[[int], None] | None = None,
    max_bytes: int = MAX_BYTES,
    deadline: float | None = None,
) -> DownloadReport:
    """Download missing scans of ``catalog``; complete files are skipped (resume).

    Failures are collected, not raised: they are written to ``download_failures.json`` in the
    catalog so that a rerun (or a person) can see exactly which cards are missing and why.
    """
    report = DownloadReport()
    todo = []
    for rec in catalog:
        if not rec.image_url or not rec.image_file:
            report.failed.append({"id": rec.id, "url": rec.image_url, "error": "record has no image_url"})
            continue
        # metadata never chooses where we write: the scan must land inside the catalog
        dest = inside(catalog.root, rec.image_file, f"card {rec.id!r}: image_file")
        if is_complete_image(dest):
            report.skipped.append(rec.id)
            if progress:
                progress(1)
        else:
            todo.append((rec.id, rec.image_url, dest))

    def one(cid: str, url: str, dest: Path) -> str:
        write_bytes_atomic(dest, fetch(url, timeout, retries, backoff, max_bytes, deadline))
        return cid

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futs = {pool.submit(one, *t): t for t in todo}
        for fut in as_completed(futs):
            cid, url, _ = futs[fut]
            try:
                report.downloaded.append(fut.result())
            except Exception as e:  # collected into the report, one line each
                report.failed.append({"id": cid, "url": url, "error": str(e)})
            if progress:
                progress(1)
    report.downloaded.sort()
    report.failed.sort(key=lambda d: d["id"])
    failures = catalog.root / FAILURES_FILE
    if report.failed:
        write_json_atomic(failures, report.failed)
    elif failures.exists():
        failures.unlink()
    return report
