"""Card catalog: records, class index, importers, downloader and duplicate report (no torch)."""

from cardid.catalog.records import (
    CLASS_INDEX_FILE,
    METADATA_FILE,
    CardRecord,
    Catalog,
    ClassIndex,
    card_file_stem,
    card_id_from_stem,
)

__all__ = [
    "CLASS_INDEX_FILE",
    "METADATA_FILE",
    "CardRecord",
    "Catalog",
    "ClassIndex",
    "card_file_stem",
    "card_id_from_stem",
]
