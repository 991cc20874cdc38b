"""onnxruntime sessions as cardid opens them: every ONNX model (embedder, card finder) the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cardid.errors import CardIDError

#: onnxruntime's idle pool threads spin-wait for the next run by default, taking the CPU from what
#: runs between two runs (ORB matching, OCR): without it a real photo took 156 ms instead of 182
#: (mean over 166 photos-dev photos on 2 cores, the same decisions)
SPINNING = "session.intra_op.allow_spinning"


def open_session(path: str | Path, providers: Sequence[str] | None = None, what: str = "ONNX model") -> Any:
    """An ``onnxruntime.InferenceSession`` on ``path``; an unreadable file is a :class:`CardIDError`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.add_session_config_entry(SPINNING, "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise CardIDError(f"not a readable {what}: {path} ({e})") from e
