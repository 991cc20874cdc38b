"""A collector's cards: kept in SQLite (:mod:`.store`), checked (:mod:`.fields`), exported to the
apps collectors use and imported back (:mod:`.formats`)."""

from cardid.collection.fields import CONDITIONS, PRINTINGS, Change, CollectionError, Owned
from cardid.collection.store import Collection, default_path

__all__ = ["CONDITIONS", "PRINTINGS", "Change", "Collection", "CollectionError", "Owned", "default_path"]
