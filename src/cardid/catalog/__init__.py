"""Card catalog: records, class index, importers, downloader and duplicate report (no torch)."""

from cardid.catalog.ids import card_file_stem, card_id_from_stem
from cardid.catalog.records import CLASS_INDEX_FILE, METADATA_FILE, CardRecord, Catalog, ClassIndex

__all__ = [
    "CLASS_INDEX_FILE",
    "METADATA_FILE",
    "CardRecord",
    "Catalog",
    "ClassIndex",
    "card_file_stem",
    "card_id_from_stem",
]
