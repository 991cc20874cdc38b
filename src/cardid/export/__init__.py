"""Export a model directory to its deployment targets, each checked against the source model.

Layout (the spec's): ``<out>/teacher/`` or ``<out>/students/<name>/`` holding ``model.onnx``
(+ ``model.fp16.onnx``, ``model.int8.onnx``), ``parity.json``, ``model.mlpackage``,
``coreml.json``, ``hailo/`` and ``export.json``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cardid.catalog.records import Catalog
from cardid.embed import TorchEmbedder, load_embedder
from cardid.errors import CardIDError
from cardid.io import write_json_atomic

TARGETS = ("onnx", "coreml", "hailo")


def export_dir(out: str | Path, meta: dict) -> Path:
    out = Path(out)
    return out / "teacher" if meta.get("kind") == "teacher" else out / "students" / str(meta.get("name"))


def calibration_images(catalog: Catalog | None, n: int, seed: int = 1) -> list[np.ndarray]:
    """Camera-like crops for int8 / Hailo calibration: simulated views of catalog cards."""
    from cardid.export.parity import ParitySet
    from cardid.fit.calibrate import synthetic_queries

    if catalog is None:
        data = ParitySet.synthetic(cards=min(n, 48), seed=seed)
        imgs = data.queries
    else:
        ids = [catalog.ids[i % len(catalog)] for i in range(min(n, len(catalog)))]
        imgs, _ = synthetic_queries(catalog, ids, seed=seed, crop_width=224)
    reps = -(-n // len(imgs))
    return (imgs * reps)[:n]


def export_model(
    model_dir: str | Path,
    out: str | Path,
    targets: Sequence[str] = ("onnx",),
    int8: bool = True,
    fp16: bool = True,
    catalog: Catalog | None = None,
    hailo_target: str = "hailo8l",
    calib_size: int = 64,
    compile_hailo: bool = False,
    log: Callable[[str], None] | None = None,
    tolerances: dict[str, dict] | None = None,
) -> dict:
    """Export ``model_dir`` to ``targets``; raise :class:`ParityError` when an ONNX export fails
    its parity check (its files are kept for inspection, ``parity.json`` says why)."""
    from cardid.export.parity import ParityError, ParitySet, parity
    from cardid.models.artifact import load_model_dir

    if log is None:
        from rich.console import Console

        log = Console().print
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise CardIDError(f"unknown export target(s) {unknown}; choose from {', '.join(TARGETS)} or all")
    model, meta = load_model_dir(model_dir, "cpu")
    dest = export_dir(out, meta)
    dest.mkdir(parents=True, exist_ok=True)
    if (Path(model_dir) / "NOTICES").is_dir():  # licences of the starting weights travel along
        shutil.copytree(Path(model_dir) / "NOTICES", dest / "NOTICES", dirs_exist_ok=True)
    source = load_embedder(model_dir, "cpu")
    assert isinstance(source, TorchEmbedder)
    data = ParitySet.from_catalog(catalog) if catalog is not None else ParitySet.synthetic()
    report: dict = {"source": str(model_dir), "source_identity": source.identity, "dir": str(dest)}
    failures = []
    if "onnx" in targets:
        from cardid.export.onnx import export_onnx, to_fp16, to_int8

        results = {}
        path = export_onnx(model, meta, dest / "model.onnx")
        variants = {"fp32": path}
        if fp16:
            variants["fp16"] = to_fp16(path, dest / "model.fp16.onnx")
        if int8:
            calib = np.stack([source.preprocess(im) for im in calibration_images(catalog, calib_size)])
            variants["int8"] = to_int8(path, dest / "model.int8.onnx", calib)
        for precision, p in variants.items():
            res = parity(source, load_embedder(p), data, precision, (tolerances or {}).get(precision))
            results[precision] = {"file": p.name, **res}
            log(
                f"{precision}: max|Δ| {res['max_abs_diff']:.2e}, mean cos {res['mean_cosine']:.5f}, "
                f"top-1 agreement {res['top1_agreement']:.3f}, R@1 {res['recall@1_export']:.3f} "
                f"(source {res['recall@1_source']:.3f}) {'ok' if res['passed'] else 'FAILED'}"
            )
            if res["recall@1_drop"] > 0.05:
                log(
                    f"[yellow]note:[/] {precision} loses {res['recall@1_drop']:.3f} Recall@1 on the parity set"
                )
            if not res["passed"]:
                failures.append(f"{p.name}: " + "; ".join(res["failures"]))
        write_json_atomic(dest / "parity.json", results)
        report["onnx"] = results
    if "coreml" in targets:
        from cardid.export.coreml import export_coreml

        report["coreml"] = export_coreml(model, meta, dest / "model.mlpackage")
        write_json_atomic(dest / "coreml.json", report["coreml"])
        log(
            f"coreml: {report['coreml']['path']} ({report['coreml']['parity'].get('reason', 'parity checked')})"
        )
    if "hailo" in targets:
        from cardid.export.hailo import compile_bundle, export_hailo

        info = export_hailo(
            model, meta, dest / "hailo", calibration_images(catalog, calib_size), hailo_target
        )
        report["hailo"] = info
        bad = info["precheck"]["unsupported"]
        log(
            f"hailo ({hailo_target}): bundle in {dest / 'hailo'}; ops not confirmed: {', '.join(bad) or 'none'}"
        )
        if compile_hailo:
            report["hailo"]["hef"] = str(compile_bundle(dest / "hailo"))
    write_json_atomic(dest / "export.json", report)
    if failures:
        raise ParityError(
            "export failed its parity check: " + " | ".join(failures) + f" (see {dest / 'parity.json'})"
        )
    return report
