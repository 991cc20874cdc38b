"""YOLO11n-OBB card detector through ultralytics (optional extra: ``pip install 'cardid[detect]'``).

Offline-safe: ``YOLO_OFFLINE=1`` is set before ultralytics is imported, plots (which fetch a font)
are off, and AMP is off (its check downloads weights). Runs land under ``models/detection/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cardid.detect import Detection
from cardid.errors import CardIDError
from cardid.io import sha256_file, write_json_atomic

log = logging.getLogger(__name__)


def _ultralytics():
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from PIL import Image

    pil_open = Image.open
    # ultralytics sets OMP_NUM_THREADS=1 on import when unset: torch, if it starts after, and every
    # process started after (data loader workers) would run one thread. Torch settles its own count
    # first, and the variable is unset again.
    import torch

    torch.get_num_threads()
    omp = os.environ.get("OMP_NUM_THREADS")
    try:
        import ultralytics
        import ultralytics.utils.patches
    except ImportError as e:
        raise CardIDError("the detector needs ultralytics: pip install 'cardid[detect]'") from e
    finally:
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
    # ultralytics replaces PIL.Image.open process-wide with a version that, on an unreadable file,
    # tries to pip-install a HEIF plugin (offline: ModuleNotFoundError instead of a clear "corrupt
    # image" error). Put Pillow's own back; cardid decodes images itself.
    Image.open = pil_open
    return ultralytics


class DetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    data: str = ""  # pokemon_cards.yaml of `cardid data detection`
    out_dir: str = "models/detection"
    model: str = "yolo11n-obb.yaml"  # architecture from scratch, or a .pt to fine-tune
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    device: str = ""  # "" = cuda:0 when present, else cpu
    workers: int = 2
    seed: int = 0
    patience: int = Field(100, ge=0)  # epochs without a better val fitness before stopping (0: never)
    export_onnx: bool = True


def train_detector(cfg: DetectorConfig) -> dict:
    """Train, keep ``best.pt`` (and ``best.onnx``) under ``out_dir``, return the val metrics."""
    _ultralytics()
    if not Path(cfg.data).is_file():
        raise CardIDError(f"detection dataset YAML not found: {cfg.data} (run `cardid data detection`)")
    import torch

    # ultralytics sets torch to cpu_count − 1 threads on a CPU (one on 2 cores) and leaves it so:
    # training keeps this process's count (an epoch at 320 px on 2 cores: 73 → 43 s); its
    # validation and export set theirs too, so the count is restored once, after all of it
    threads = torch.get_num_threads()
    try:
        return _train_and_export(cfg, threads)
    finally:
        torch.set_num_threads(threads)


def _train_and_export(cfg: DetectorConfig, threads: int) -> dict:
    import torch
    from ultralytics import YOLO

    device = cfg.device or ("0" if torch.cuda.is_available() else "cpu")
    out = Path(cfg.out_dir)
    last = out / "run" / "weights" / "last.pt"
    if last.is_file() and not (out / "detector.json").is_file():  # a killed run: continue it
        log.info("detector: resuming %s", last)
        _keeping_threads(YOLO(str(last)), threads).train(resume=True)
    else:
        _keeping_threads(YOLO(cfg.model), threads).train(
            data=cfg.data,
            epochs=cfg.epochs,
            imgsz=cfg.imgsz,
            batch=cfg.batch,
            device=device,
            workers=cfg.workers,
            seed=cfg.seed,
            patience=cfg.patience,  # ultralytics: 0 never stops early
            amp=False,
            plots=False,
            project=str(out.resolve()),
            name="run",
            exist_ok=True,
            verbose=False,
        )
    best = out / "run" / "weights" / "best.pt"
    shutil.copy2(best, out / "best.pt")
    metrics = YOLO(str(out / "best.pt")).val(
        data=cfg.data, imgsz=cfg.imgsz, device=device, plots=False, verbose=False
    )
    result = {
        "weights": str(out / "best.pt"),
        # what makes this .pt loadable later: a pickle runs code, so only a recorded one is opened
        "weights_sha256": sha256_file(out / "best.pt"),
        "val": {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)},
        "config": cfg.model_dump(),
    }
    if cfg.export_onnx:
        onnx_path = YOLO(str(out / "best.pt")).export(
            format="onnx", imgsz=cfg.imgsz, dynamic=False, simplify=False
        )
        target = out / "best.onnx"
        if Path(onnx_path).resolve() != target.resolve():
            shutil.copy2(onnx_path, target)
        result["onnx"] = str(target)
        result["onnx_sha256"] = sha256_file(target)
    write_json_atomic(out / "detector.json", result)
    return result


def _keeping_threads(model, threads: int):
    """``model``, its trainer set back to ``threads`` torch threads once ultralytics has set its own."""
    import torch

    model.add_callback("on_pretrain_routine_end", lambda trainer: torch.set_num_threads(threads))
    return model


def check_weights(weights: str | Path) -> Path:
    """Refuse detector weights that could run code when opened: a ``.pt`` is a pickle (ultralytics
    unpickles it with ``weights_only=False``), so it is opened only when ``detector.json`` beside it,
    written by ``cardid train detector``, records its SHA-256. ONNX files hold no code."""
    path = Path(weights)
    if not path.is_file():
        raise CardIDError(f"detector weights not found: {path}")
    if path.suffix.lower() == ".onnx":
        return path
    if path.suffix.lower() != ".pt":
        raise CardIDError(f"detector weights must be a .pt or .onnx file: {path}")
    record = path.parent / "detector.json"
    recorded = None
    if record.is_file():
        try:
            info = json.loads(record.read_text(encoding="utf-8"))
            if isinstance(info, dict) and Path(str(info.get("weights", ""))).name == path.name:
                recorded = info.get("weights_sha256")
        except (OSError, ValueError):
            recorded = None
    if not recorded:
        raise CardIDError(
            f"refusing to open {path}: a .pt file is a pickle and can run code, and no hash for it is "
            f"recorded in {record} (written by `cardid train detector`); use its .onnx export instead"
        )
    if sha256_file(path) != recorded:
        raise CardIDError(f"refusing to open {path}: its SHA-256 differs from the one recorded in {record}")
    return path


class YoloDetector:
    """A trained ``.pt`` (or its ``.onnx`` export) as a detector returning card corners."""

    def __init__(
        self, weights: str | Path, conf: float = 0.25, imgsz: int | None = None, device: str = "cpu"
    ):
        _ultralytics()
        from ultralytics import YOLO

        self.model = YOLO(str(check_weights(weights)), task="obb")
        self.conf, self.device = conf, device
        self.imgsz = imgsz or int(getattr(self.model, "overrides", {}).get("imgsz", 640) or 640)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """RGB uint8 → detections (ultralytics expects BGR arrays)."""
        import torch

        threads = torch.get_num_threads()
        try:
            res = self.model.predict(
                np.ascontiguousarray(image[..., ::-1]),
                imgsz=self.imgsz,
                conf=self.conf,
                device=self.device,
                verbose=False,
            )[0]
        finally:  # its first call sets torch's thread count for the whole process (train_detector)
            torch.set_num_threads(threads)
        if res.obb is None or len(res.obb) == 0:
            return []
        corners = res.obb.xyxyxyxy.cpu().numpy().reshape(-1, 4, 2).astype(np.float32)
        conf = res.obb.conf.cpu().numpy()
        return [Detection(c, float(s)) for c, s in zip(corners, conf, strict=True)]
