"""The collection file's tables, and bringing a file an earlier cardid wrote up to them."""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    id INTEGER PRIMARY KEY,
    card_id TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 1),
    condition TEXT NOT NULL DEFAULT 'NM' CHECK (condition IN ('NM', 'LP', 'MP', 'HP', 'DMG')),
    language TEXT NOT NULL DEFAULT 'English',
    printing TEXT NOT NULL DEFAULT 'Normal',
    folder TEXT NOT NULL DEFAULT '',
    added TEXT NOT NULL,
    photo TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cards_card ON cards (card_id);
CREATE TABLE IF NOT EXISTS edits (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    batch INTEGER NOT NULL,
    row_id INTEGER NOT NULL,
    before TEXT,
    after TEXT,
    undone INTEGER NOT NULL DEFAULT 0
);
"""
#: each crop the scanner kept, linked to the change that added its card (``labelled.csv`` follows)
PHOTOS = (
    "CREATE TABLE IF NOT EXISTS photos (file TEXT PRIMARY KEY, row_id INTEGER NOT NULL,"
    " batch INTEGER NOT NULL, notes TEXT NOT NULL DEFAULT '')"
)
#: ``edits.undone``: 0 live; n > 0 the n-th undo, redoable (the highest first); -1 undone for good
#: (a change made after an undo ends what can be redone, as in any editor)
FOR_GOOD = -1


def upgrade(con: sqlite3.Connection) -> None:
    """A file from before redo and kept crops: what it undid stays undone (never redone by the
    first redo), and the ``photos`` table is added. Nothing else in it changes."""
    if con.execute("SELECT 1 FROM meta WHERE key = 'redo'").fetchone() is not None:
        return
    con.execute("BEGIN IMMEDIATE")
    con.execute(PHOTOS)
    con.execute("UPDATE edits SET undone = ? WHERE undone > 0", (FOR_GOOD,))
    con.execute("INSERT OR REPLACE INTO meta VALUES ('redo', '1')")
    con.execute("COMMIT")
