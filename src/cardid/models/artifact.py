"""Self-describing model directories: ``<name>.safetensors`` + ``model.json``.

``model.json`` records the kind (teacher/student), the backbone spec (registry name, weights
source, revision, full architecture config), pooling, dims, the preprocessing contract, the class
set it was trained on, metrics, the training config and versions. Loading rebuilds the architecture
offline from that record and fills it from safetensors (no pickle), after checking the weights'
SHA-256, so a model file can never be paired with the wrong description.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from cardid import __version__
from cardid.errors import CardIDError
from cardid.io import atomic_path, read_json, sha256_file, write_json_atomic
from cardid.models.backbones import BackboneSpec, create_backbone
from cardid.models.model import EmbeddingModel
from cardid.models.pretrained import WEIGHTS, provenance, write_notices
from cardid.preprocess import Preprocess

MODEL_JSON = "model.json"
FORMAT = "cardid-model/1"


def classes_hash(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def save_model_dir(
    model: EmbeddingModel,
    out: str | Path,
    *,
    name: str,
    kind: str,
    preprocess: Preprocess,
    pooling: str,
    classes: list[str] | None = None,
    metrics: dict | None = None,
    config: dict | None = None,
    extra: dict | None = None,
    complete: bool = True,
) -> dict[str, Any]:
    """Write weights (atomically) then ``model.json`` describing them; returns the record.

    ``complete=False``: the best model so far of a run still training; loading it is refused
    (a killed run must not leave what looks like a finished model) until :func:`mark_complete`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.safetensors"
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT, "name": name})
    mlp = model.head_kind == "mlp"
    meta = {
        "format": FORMAT,
        "kind": kind,
        "name": name,
        "weights": weights.name,
        "weights_sha256": sha256_file(weights),  # the file, for integrity
        "tensors_sha256": tensors_sha256(state),  # the content, for identity
        "backbone": asdict(model.backbone.spec),
        "pooling": pooling,
        "backbone_dim": model.backbone.out_dim,
        "head": model.head_kind,
        "proj_hidden_dim": model.proj.net[0].out_features if mlp else None,
        "proj_norm": model.proj.input_norm if mlp else None,
        "embed_dim": model.embed_dim,
        "dropout": model.proj.net[2].p if mlp else 0.0,
        "preprocess": preprocess.to_dict(),
        "classes": {"count": len(classes), "sha256": classes_hash(classes)} if classes else None,
        "metrics": metrics or {},
        "config": config or {},
        "versions": {
            "cardid": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "transformers": _version("transformers"),
            "timm": _version("timm"),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "complete": complete,
        **(extra or {}),
    }
    started_from = model.backbone.spec.name
    if started_from in WEIGHTS:  # packaged weights: say which, and their licence travels along
        meta["pretrained_weights"] = provenance(started_from)
        meta["notices"] = [str(p.relative_to(out)) for p in write_notices(started_from, out)]
    write_json_atomic(out / MODEL_JSON, meta)
    return meta


def mark_complete(path: str | Path) -> None:
    """The run that wrote this model directory finished: its model may now be loaded."""
    meta = read_model_meta(path)
    meta["complete"] = True
    write_json_atomic(Path(path) / MODEL_JSON, meta)


def _version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def read_model_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta = read_json(path / MODEL_JSON if path.is_dir() else path, "model description (model.json)")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CardIDError(f"{path}: not a cardid model directory (format {found!r}, want {FORMAT})")
    for key, typ in _REQUIRED.items():
        if not isinstance(meta.get(key), typ) or isinstance(meta.get(key), bool):
            raise CardIDError(
                f"{path}: model.json field {key!r} is missing or not a {typ.__name__} (got {meta.get(key)!r:.60})"
            )
    return meta


#: What loading relies on in a model.json, with its type.
_REQUIRED = {
    "weights": str,
    "weights_sha256": str,
    "backbone": dict,
    "pooling": str,
    "embed_dim": int,
    "preprocess": dict,
}


def check_complete(meta: dict[str, Any], path: Path) -> None:
    if meta.get("complete") is False:  # absent: written before this flag, by a finished run
        step = (meta.get("metrics") or {}).get("step")
        raise CardIDError(
            f"{path} holds the best model so far of a training run that did not finish"
            f"{f' (step {step})' if step is not None else ''}; resume the run to finish it"
        )


def build_model(meta: dict[str, Any]) -> EmbeddingModel:
    """The architecture a ``model.json`` describes, randomly initialised (offline)."""
    try:
        spec = BackboneSpec(**meta["backbone"])
    except TypeError as e:
        raise CardIDError(f"model.json 'backbone' is malformed ({e})") from e
    backbone = create_backbone(
        spec.name,
        source=spec.source,
        revision=spec.revision,
        pretrained=False,
        pooling=meta["pooling"],
        config=spec.config,
    )
    return EmbeddingModel(
        backbone,
        meta["embed_dim"],
        meta["dropout"],
        meta["proj_hidden_dim"],
        head=meta.get("head", "mlp"),
        proj_norm=meta.get("proj_norm"),
    )


def load_model_dir(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[EmbeddingModel, dict[str, Any]]:
    """Load a model directory; the weights' hash and every tensor's name and shape are checked."""
    path = Path(path)
    meta = read_model_meta(path)
    check_complete(meta, path)
    weights = path / meta["weights"]
    if not weights.is_file():
        raise CardIDError(f"weights file missing: {weights}")
    if sha256_file(weights) != meta["weights_sha256"]:
        raise CardIDError(f"{weights} does not match {path / MODEL_JSON} (SHA-256 differs): mixed-up files?")
    model = build_model(meta)
    load_state(model, load_file(str(weights)), str(weights))
    model.to(device).eval()
    return model, meta


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict)`` with an error that says which tensors disagree."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        detail = "; ".join(
            filter(
                None,
                [
                    f"missing {missing[:3]}" if missing else "",
                    f"unexpected {unexpected[:3]}" if unexpected else "",
                    f"shape mismatch {shapes[:3]}" if shapes else "",
                ],
            )
        )
        raise CardIDError(
            f"{source} does not fit this architecture (another backbone or class count?): {detail}"
        )
    model.load_state_dict(state, strict=True)


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hash of the tensors themselves (names, dtypes, shapes, bytes, in name order): identical
    weights give one identity whatever the file's header looks like (safetensors writes its
    metadata in no fixed order)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_identity(meta: dict[str, Any]) -> str:
    """Short content identity of a model (what a reference DB records): the tensors' hash, or
    for models written before it, the weights file's."""
    return (meta.get("tensors_sha256") or meta["weights_sha256"])[:16]


def describe(meta: dict[str, Any]) -> str:
    return json.dumps({k: meta[k] for k in ("kind", "name", "embed_dim", "pooling") if k in meta})
