"""Fetch every card's scan: bounded concurrency, retries with backoff, resume, atomic writes."""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from PIL import UnidentifiedImageError

from cardid.catalog.records import Catalog
from cardid.io import inside, pil_open, write_bytes_atomic, write_json_atomic

FAILURES_FILE = "download_failures.json"
USER_AGENT = "cardid-downloader/0.1 (+https://github.com/cardid)"
_RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class DownloadReport:
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def is_complete_image(path: Path) -> bool:
    """A file counts as downloaded only if it exists and decodes as an image."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        with pil_open(path) as im:
            im.verify()
        return True
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def fetch(url: str, timeout: float, retries: int, backoff: float) -> bytes:
    """GET ``url``; retry transient failures (network, 5xx, 429) with exponential backoff."""
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                data = r.read()
                expected = r.headers.get("Content-Length")
                if expected is not None and int(expected) != len(data):
                    raise OSError(f"truncated body: {len(data)} of {expected} bytes")
            pil_open(io.BytesIO(data)).verify()
            return data
        except urllib.error.HTTPError as e:
            last = e
            if e.code not in _RETRYABLE_HTTP:
                break
        except (UnidentifiedImageError, SyntaxError) as e:
            last = ValueError(f"response is not an image ({e})")
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            last = e
    raise RuntimeError(str(last))


def download_images(
    catalog: Catalog,
    workers: int = 8,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 0.5,
    progress: Callable[[int], None] | None = None,
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
        write_bytes_atomic(dest, fetch(url, timeout, retries, backoff))
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
