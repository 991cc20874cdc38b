"""An ONNX file behind the :class:`~cardid.embed.Embedder` interface (onnxruntime, CPU by default).

A cardid ONNX export carries its preprocessing contract and provenance in the model's metadata
(``cardid.*`` keys), so the file alone says how to feed it; the identity a DB records is the hash
of the ONNX file itself — a DB built with the deployed artefact accepts only that artefact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cardid.embed.base import BatchedEmbedder
from cardid.errors import CardIDError
from cardid.preprocess import Preprocess

ONNX_FORMAT = "cardid-onnx/1"


def _cardid_meta(props: dict[str, str], path: Path) -> dict:
    """The ``cardid.*`` entries of an ONNX file's metadata, decoded; an error if it has none."""
    meta = {k[len("cardid.") :]: v for k, v in props.items() if k.startswith("cardid.")}
    if meta.get("format") != ONNX_FORMAT:
        raise CardIDError(f"{path} has no cardid metadata (not exported by `cardid export`)")
    for k in ("preprocess", "source", "pretrained_weights"):
        if k in meta:
            meta[k] = json.loads(meta[k])
    meta["embed_dim"] = int(meta["embed_dim"])
    return meta


def read_onnx_meta(path: str | Path) -> dict:
    """The ``cardid.*`` metadata of an ONNX file (without loading the weights into a session)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CardIDError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and friends
        raise CardIDError(f"not a readable ONNX model: {path} ({e})") from e
    return _cardid_meta({p.key: p.value for p in model.metadata_props}, path)


class OnnxEmbedder(BatchedEmbedder):
    """Runs a cardid ONNX export with onnxruntime; outputs are re-normalised (int8 drifts off 1)."""

    def __init__(self, path: str | Path, batch_size: int = 64, providers: Sequence[str] | None = None):
        from cardid.io import sha256_file
        from cardid.onnxrt import open_session

        self.path = Path(path)
        if not self.path.is_file():
            raise CardIDError(f"ONNX model not found: {self.path}")
        self.session = open_session(self.path, providers)
        # the metadata through onnxruntime itself: the runtime needs no `onnx` package
        meta = _cardid_meta(self.session.get_modelmeta().custom_metadata_map, self.path)
        self.preprocess = Preprocess.from_dict(meta["preprocess"])
        self.dim = meta["embed_dim"]
        digest = sha256_file(self.path)
        self.identity = digest[:16]
        self.info = {
            "format": "onnx",
            "path": str(self.path),
            "name": meta["source"].get("name"),
            "kind": meta["source"].get("kind"),
            "backbone": meta["source"].get("backbone"),
            "precision": meta.get("precision"),
            "source_identity": meta.get("source_identity"),
            "weights_sha256": digest,
        }
        shape = self.session.get_inputs()[0].shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.batch_size = self.fixed_batch or batch_size

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if self.fixed_batch:
            out = [self.session.run(["embedding"], {"input": x[i : i + 1]})[0] for i in range(len(x))]
            y = np.concatenate(out)
        else:
            y = self.session.run(["embedding"], {"input": x})[0]
        y = y.astype(np.float32)
        return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
