"""Data stages: the catalog, its duplicate report, the embedding dataset, the camera-simulation
contact sheet and the detector's scenes. Each one calls the library function its command calls."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cardid.errors import CardIDError
from cardid.pipeline.contract import StageContext, StageResult, stage
from cardid.pipeline.stages.common import Settings, open_catalog
from cardid.progress import progress


class SynthCatalog(Settings):
    cards: int = Field(60, ge=2)
    height: int = 384
    reprint_fraction: float = 0.2


class FolderCatalog(Settings):
    path: str  # a folder of <card_id>.<ext> scans (they stay where they are)
    csv: str | None = None  # card_id,name,set_id,number,… (gallery.csv)
    pokemontcg: str | None = None  # pokemontcg.io static data


class CatalogStage(Settings):
    """Exactly one source: ``synth`` (procedural cards), ``folder`` (scans in place) or ``path``
    (a catalog already built, used as it is)."""

    synth: SynthCatalog | None = None
    folder: FolderCatalog | None = None
    path: str | None = None


def _catalog_external(cfg: CatalogStage) -> list[Path]:
    if cfg.folder:
        return [Path(p) for p in (cfg.folder.path, cfg.folder.csv) if p]
    return [Path(cfg.path)] if cfg.path else []


@stage("catalog", CatalogStage, external=_catalog_external, outputs=("catalog",))
def catalog_stage(ctx: StageContext, cfg: CatalogStage) -> StageResult:
    """The card catalog: synthetic cards, a folder of scans, or a catalog given."""
    from cardid.catalog.records import Catalog

    if sum(x is not None for x in (cfg.synth, cfg.folder, cfg.path)) != 1:
        raise CardIDError(f"stage {ctx.name!r}: give exactly one of synth, folder or path")
    if cfg.synth:
        from cardid.synth.cards import synth_cards

        s = cfg.synth
        with progress(s.cards, "synth cards") as advance:
            cat = synth_cards(
                ctx.dir / "catalog",
                s.cards,
                ctx.recipe.seed,
                height=s.height,
                reprint_fraction=s.reprint_fraction,
                overwrite=True,
                progress=advance,
            )
        reprints = sum(1 for r in cat if getattr(r, "reprint_of", None))
        figure = f"{len(cat)} synthetic cards, {reprints} reprints"
    elif cfg.folder:
        from cardid.catalog.folder import catalog_from_folder

        f = cfg.folder
        if not Path(f.path).is_dir():
            raise CardIDError(f"stage {ctx.name!r}: no folder of scans at {f.path}")
        cat = catalog_from_folder(f.path, ctx.dir / "catalog", f.csv, f.pokemontcg)
        figure = f"{len(cat)} cards from {f.path} (scans in place)"
    else:
        cat = Catalog.open(cfg.path)
        cat.require_images()
        return StageResult(
            figure=f"{len(cat)} cards from {cfg.path}", outputs={"catalog": Path(cfg.path).resolve()}
        )
    return StageResult(figure=figure, outputs={"catalog": ctx.dir / "catalog"}, metrics={"cards": len(cat)})


@stage("duplicates", Settings, needs=("catalog",), outputs=("report",))
def duplicates_stage(ctx: StageContext, cfg: Settings) -> StageResult:
    """Near-identical scans (pHash): a report beside the catalog."""
    from cardid.catalog.dedupe import find_duplicates, write_duplicate_report

    cat = open_catalog(ctx)
    with progress(len(cat), "duplicate report") as advance:
        rep = find_duplicates(cat, progress=advance)
    path = write_duplicate_report(cat, rep, ctx.dir / "duplicates.json")
    return StageResult(figure=f"{len(rep.pairs)} near-identical pairs (pHash)", outputs={"report": path})


class DatasetStage(Settings):
    train_views: int = Field(8, ge=1)
    val_views: int = Field(2, ge=0)
    workers: int = 0


@stage("dataset", DatasetStage, needs=("catalog",), outputs=("dataset",))
def dataset_stage(ctx: StageContext, cfg: DatasetStage) -> StageResult:
    """Train / val camera views of every card, and its gallery scan."""
    from cardid.data.layout import EmbeddingDataConfig, write_embedding_dataset

    cat = open_catalog(ctx)
    dcfg = EmbeddingDataConfig(train_views=cfg.train_views, val_views=cfg.val_views, seed=ctx.recipe.seed)
    with progress(len(cat), "embedding dataset") as advance:
        ds = write_embedding_dataset(
            cat, ctx.dir / "dataset", dcfg, workers=cfg.workers, overwrite=True, progress=advance
        )
    what = f"{len(cat)} cards × ({cfg.train_views} train + {cfg.val_views} val) views + gallery"
    return StageResult(figure=what, outputs={"dataset": ds})


class PreviewStage(Settings):
    cards: int = Field(4, ge=1)


@stage("preview", PreviewStage, needs=("catalog",), outputs=("sheet",))
def preview_stage(ctx: StageContext, cfg: PreviewStage) -> StageResult:
    """A contact sheet to judge the camera simulation by eye."""
    from cardid.synth.preview import write_contact_sheet

    sheet = write_contact_sheet(
        open_catalog(ctx), ctx.dir / "preview.png", cards=cfg.cards, seed=ctx.recipe.seed
    )
    return StageResult(figure="scan | 8 camera crops | 2 scenes per card", outputs={"sheet": sheet})


class DetectionDataStage(Settings):
    scenes: int = Field(200, ge=1)
    size: int = 640
    real: str | None = None  # real labelled photos (YOLO txt), split by photo; real_test never trained on


@stage(
    "detection-data",
    DetectionDataStage,
    needs=("catalog",),
    external=lambda cfg: [Path(cfg.real)] if cfg.real else [],
    outputs=("data", "dir"),
)
def detection_data_stage(ctx: StageContext, cfg: DetectionDataStage) -> StageResult:
    """Simulated scenes with every card's four corners (and real labelled photos when given)."""
    from cardid.data.detection import DetectionDataConfig, write_detection_dataset

    dcfg = DetectionDataConfig(scenes=cfg.scenes, size=cfg.size, seed=ctx.recipe.seed, real=cfg.real)
    root = write_detection_dataset(open_catalog(ctx), ctx.dir / "detection", dcfg, overwrite=True)
    real = f" + real photos from {cfg.real}" if cfg.real else ""
    return StageResult(
        figure=f"{cfg.scenes} simulated scenes at {cfg.size} px{real}",
        outputs={"data": root / "pokemon_cards.yaml", "dir": root},
    )
