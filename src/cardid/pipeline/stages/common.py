"""What every stage kind shares: strict settings, the catalog of the run, the finder later stages use."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cardid.pipeline.contract import StageContext


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


def open_catalog(ctx: StageContext):
    from cardid.catalog.records import Catalog

    return Catalog.open(ctx.path("catalog", "catalog"))


def detector_for(ctx: StageContext) -> str:
    """What finds cards for later stages: the trained detector's ONNX export when it is good
    enough, else the classical finder."""
    if not ctx.has("detector"):
        return "classical"
    if ctx.metric("detector", "use") != "onnx":
        return "classical"
    return str(ctx.path("detector", "onnx"))
