"""``cardid export``: ONNX (fp32/fp16/int8), CoreML and a Hailo bundle, each checked for parity."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

out = Console()


def export_cmd(
    model: Path | None = typer.Option(
        None, help="A model directory (model.json + weights): teacher or student."
    ),
    bundle: Path | None = typer.Option(
        None, help="A bundle (cardid pipeline): export the trained model it carries (e.g. --target coreml)."
    ),
    target: str = typer.Option("onnx", help="onnx, coreml, hailo, or all (comma-separated works too)."),
    out_dir: Path = typer.Option(
        Path("models/embedding"), "--out", help="Root: <out>/students/<name>/ or <out>/teacher/."
    ),
    catalog: Path | None = typer.Option(
        None,
        help="Cards for parity and calibration crops (catalog or scan folder; default: synthetic cards).",
    ),
    int8: bool = typer.Option(True, help="Also write and check a static int8 ONNX."),
    fp16: bool = typer.Option(True, help="Also write and check an fp16 ONNX."),
    calib_size: int = typer.Option(64, min=1, help="Camera-like crops for int8 / Hailo calibration."),
    hailo_target: str = typer.Option("hailo8l", help="Hailo chip: hailo8l (Raspberry Pi AI kit) or hailo8."),
    compile: bool = typer.Option(
        False, "--compile", help="Run the Hailo DFC on the bundle (needs hailo_sdk_client)."
    ),
) -> None:
    """Export a model; an ONNX export that fails its parity check fails the command."""
    from cardid.catalog.records import Catalog
    from cardid.errors import CardIDError
    from cardid.export import TARGETS, export_model

    if (model is None) == (bundle is None):
        raise CardIDError("give --model (a model directory) or --bundle (a bundle), one of them")
    if bundle is not None:
        from cardid.bundle import load_bundle

        b = load_bundle(bundle)
        if b.source is None:
            raise CardIDError(f"bundle {bundle} carries no trained model to export (only its ONNX)")
        model = b.source
    targets = list(TARGETS) if target == "all" else [t.strip() for t in target.split(",") if t.strip()]
    cat = Catalog.open(catalog) if catalog else None
    report = export_model(
        model, out_dir, targets, int8, fp16, cat, hailo_target, calib_size, compile, log=out.print
    )
    out.print(f"[green]exported[/] {model} → {report['dir']}")
