"""The same photo uploaded again: known by what it shows, not by its name, and said so.

A photo's key is its 16 × 16 greyscale thumbnail (256 bytes); a photo whose thumbnail differs from
one seen before by at most ``max_diff`` grey levels on average is that photo again. Measured on
400 photos of photos-dev: a photo saved again as JPEG at quality 30 differs by 0.3, resized to a
quarter by 1.5; two different photos by 2.8 or more (the closest pair, two listings of one card).
The first sighting of each key is kept (time and file name), in memory and, with a folder, in
``seen.jsonl`` there, so a restarted server still knows them; at most ``max_keys``, oldest
forgotten first.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

SEEN = "seen.jsonl"


def photo_key(image: np.ndarray) -> str:
    """A photo's key: its 16 × 16 greyscale thumbnail, as hex."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.uint8).tobytes().hex()


class Repeats:
    """First sightings of photos by key."""

    def __init__(self, root: str | Path | None = None, max_keys: int = 20000, max_diff: float = 2.0):
        self.path = Path(root) / SEEN if root is not None else None
        self.max_keys, self.max_diff = max_keys, max_diff
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, dict] = OrderedDict()
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                    self._seen[str(row["key"])] = {"name": str(row["name"]), "at": float(row["at"])}
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line: the photos before it are still known
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)

    def sighting(self, key: str, name: str) -> dict | None:
        """The first sighting of ``key`` (``name``, ``at``: seconds since the epoch), or None when
        this is the first, which is then kept."""
        with self._lock:
            first = self._nearest(key)
            if first is not None:
                return dict(first)
            self._seen[key] = {"name": name, "at": time.time()}
            if len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
                self._rewrite()
            elif self.path is not None:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, **self._seen[key]}) + "\n")
            return None

    def _nearest(self, key: str) -> dict | None:
        """The first sighting of the closest key seen, when within ``max_diff``."""
        if not self._seen:
            return None
        keys = list(self._seen)
        seen = np.frombuffer(b"".join(bytes.fromhex(k) for k in keys), np.uint8).reshape(len(keys), -1)
        diff = np.abs(seen.astype(np.int16) - np.frombuffer(bytes.fromhex(key), np.uint8)).mean(1)
        i = int(diff.argmin())
        return self._seen[keys[i]] if diff[i] <= self.max_diff else None

    def _rewrite(self) -> None:
        if self.path is None:
            return
        from cardid.io import write_bytes_atomic

        rows = "".join(json.dumps({"key": k, **v}) + "\n" for k, v in self._seen.items())
        write_bytes_atomic(self.path, rows.encode("utf-8"))
