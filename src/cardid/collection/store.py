"""A collector's cards, kept in SQLite: one row per owned card and its copies, every edit undoable.

One file (``--collection``, default ``collection.sqlite`` in the user's data dir),
written in WAL mode with every change in one ``BEGIN IMMEDIATE`` transaction, so several browser
tabs and the command line can use it at once and a killed server loses nothing it said it kept.
A row is a card id with its quantity, condition (NM/LP/MP/HP/DMG), language, printing/finish,
folder (a binder), when and from which photo it was added. Every change is written to ``edits``
with the row before and after, in the same transaction: :meth:`Collection.undo` reverts the last
change not yet undone (an import is one change), whatever process made it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardid.collection.fields import (
    DEFAULTS,
    FORMAT,
    MAX_QUANTITY,
    SAME,
    STORED,
    Change,
    CollectionError,
    Owned,
    check_fields,
)
from cardid.collection.schema import FOR_GOOD, PHOTOS, SCHEMA, upgrade


@dataclass
class _Tx:
    con: sqlite3.Connection
    batch: int
    changed: bool = False  # a new change was logged (not an undo or a redo)

    def execute(self, *args):
        return self.con.execute(*args)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_path() -> Path:
    """``collection.sqlite`` in the user's data dir (``$XDG_DATA_HOME/cardid``, default
    ``~/.local/share/cardid``): never inside a run or a bundle, which stay as built."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cardid" / "collection.sqlite"


class Collection:
    """An open collection file. Methods are safe to call from several threads and processes."""

    def __init__(self, path: str | Path, timeout: float = 10.0, create: bool = True):
        """``create``: make an empty collection where there is none (else that is an error: a
        mistyped path never becomes a new, empty collection)."""
        self.path = Path(path)
        self.timeout = timeout
        if not create and not self.path.is_file():
            raise CollectionError(f"no collection at {self.path} (check --collection)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        try:
            with self._connect() as con:
                if fresh:
                    con.executescript(SCHEMA + ";" + PHOTOS)
                    con.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))
                    con.execute("INSERT OR REPLACE INTO meta VALUES ('created', ?)", (_now(),))
                has_meta = con.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                ).fetchone()
                fmt = (
                    con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
                    if has_meta
                    else None
                )
        except sqlite3.DatabaseError as e:
            raise CollectionError(f"{self.path} is not a cardid collection ({e})") from None
        if not fmt or fmt[0] != FORMAT:
            raise CollectionError(f"{self.path} is an SQLite file but not a cardid collection ({FORMAT})")
        try:
            with self._connect() as con:
                upgrade(con)
        except CollectionError:
            pass  # read-only: it can be read, and nothing in it will be redone

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.OperationalError as e:
            raise CollectionError(f"cannot open the collection {self.path}: {e}") from None
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            yield con
        except sqlite3.OperationalError as e:
            msg = str(e)
            if "locked" in msg or "busy" in msg:
                raise CollectionError(
                    f"the collection {self.path} is locked by another program; try again"
                ) from None
            if "readonly" in msg or "read-only" in msg:
                raise CollectionError(
                    f"the collection {self.path} is read-only; nothing was changed"
                ) from None
            raise CollectionError(f"collection {self.path}: {msg}") from None
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        """One transaction, one undoable change: everything in it is kept, or nothing."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                batch = int(con.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM edits").fetchone()[0])
                tx = _Tx(con, batch)
                yield tx
                if tx.changed:  # a new change: what was undone before it can no longer be redone
                    con.execute("UPDATE edits SET undone = ? WHERE undone > 0", (FOR_GOOD,))
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # ------------------------------------------------------------------ reading
    _COLS = ", ".join(("id", *STORED))

    def rows(self, folder: str | None = None, limit: int | None = None, offset: int = 0) -> list[Owned]:
        """The rows in the order added (of one ``folder``; ``limit`` of them from ``offset``)."""
        with self._connect() as con:
            q = f"SELECT {self._COLS} FROM cards"
            args: tuple = ()
            if folder is not None:
                q, args = q + " WHERE folder = ?", (folder,)
            q += " ORDER BY id"
            if limit is not None or offset:
                q, args = q + " LIMIT ? OFFSET ?", (*args, -1 if limit is None else int(limit), int(offset))
            return [Owned(*r) for r in con.execute(q, args)]

    def size(self, folder: str | None = None) -> int:
        """How many rows (of one ``folder``)."""
        with self._connect() as con:
            if folder is None:
                return int(con.execute("SELECT COUNT(*) FROM cards").fetchone()[0])
            return int(con.execute("SELECT COUNT(*) FROM cards WHERE folder = ?", (folder,)).fetchone()[0])

    def get(self, row_id: int) -> Owned:
        with self._connect() as con:
            return self._fetch(con, row_id)

    def count(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COALESCE(SUM(quantity), 0) FROM cards").fetchone()[0])

    def already(self, rows: list[dict[str, Any]]) -> list[int]:
        """The indexes of ``rows`` (as :meth:`add_many` takes them) that carry their ``added`` time
        and are already here, the same in every field: a backup imported a second time."""
        keys = tuple(k for k in STORED if k != "photo")  # a crop's file is this machine's, not the row's
        with self._connect() as con:
            have = set(con.execute(f"SELECT {', '.join(keys)} FROM cards"))
        found = []
        for i, r in enumerate(rows):
            if r.get("added"):
                full = DEFAULTS | self._checked(r)
                if tuple(full.get(k) for k in keys) in have:
                    found.append(i)
        return found

    def labels(self) -> list[tuple[str, str, str]]:
        """``(file, card_id, notes)`` of every crop kept with an add that stands (not undone) whose
        row still exists, under the row's card now (a correction relabels its crops)."""
        with self._connect() as con:
            return con.execute(
                "SELECT p.file, c.card_id, p.notes FROM photos p JOIN cards c ON c.id = p.row_id "
                "WHERE NOT EXISTS (SELECT 1 FROM edits e WHERE e.batch = p.batch AND e.undone != 0) "
                "ORDER BY p.rowid"
            ).fetchall()

    def labelled_files(self) -> set[str]:
        """Every crop ever linked to a change, standing or not."""
        with self._connect() as con:
            return {r[0] for r in con.execute("SELECT file FROM photos")}

    # ------------------------------------------------------------------ editing
    @staticmethod
    def _log(tx: _Tx, action: str, row_id: int, before: Owned | None, after: Owned | None) -> None:
        tx.changed = True
        tx.execute(
            "INSERT INTO edits (at, action, batch, row_id, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            (
                _now(),
                action,
                tx.batch,
                row_id,
                json.dumps(before.to_dict()) if before else None,
                json.dumps(after.to_dict()) if after else None,
            ),
        )

    def add(
        self,
        card_id: str,
        quantity: int = 1,
        merge: bool = True,
        kept: tuple[str, str] | None = None,
        **values: Any,
    ) -> Change:
        """Add copies of a card; with ``merge``, to the row of the same card in the same state.
        ``kept``: the ``(file, notes)`` of the card's crop, linked to this change (:meth:`labels`)."""
        if kept is not None:
            values.setdefault("photo", kept[0])
        with self._write() as tx:
            ch = self._add(tx, self._checked({"card_id": card_id, "quantity": quantity, **values}), merge)
            if kept is not None:
                tx.execute(
                    "INSERT OR REPLACE INTO photos VALUES (?, ?, ?, ?)",
                    (kept[0], ch.row.id, tx.batch, kept[1]),
                )
            return ch

    @staticmethod
    def _checked(r: dict[str, Any]) -> dict[str, Any]:
        v = check_fields({k: x for k, x in r.items() if k != "added"})
        return v | ({"added": str(r["added"])} if r.get("added") else {})

    def add_many(self, rows: list[dict[str, Any]], merge: bool = True) -> list[Change]:
        """Add rows as one change (an import): every row checked first, all kept or none. A row's
        ``added`` (when, ISO time) is kept as given: an import keeps the original time."""
        checked = [self._checked(r) for r in rows]
        with self._write() as tx:
            return [self._add(tx, v, merge) for v in checked]

    def _add(self, tx: _Tx, v: dict[str, Any], merge: bool) -> Change:
        full = DEFAULTS | v
        if merge:
            where = " AND ".join(f"{k} = ?" for k in SAME)
            r = tx.execute(
                f"SELECT {self._COLS} FROM cards WHERE {where} ORDER BY id LIMIT 1",
                tuple(full[k] for k in SAME),
            ).fetchone()
            if r is not None:
                before = Owned(*r)
                if before.quantity + full["quantity"] > MAX_QUANTITY:
                    raise CollectionError(
                        f"{full['card_id']}: {before.quantity:,} + {full['quantity']:,} copies is over "
                        f"{MAX_QUANTITY:,} in one row; nothing was changed"
                    )
                tx.execute(
                    "UPDATE cards SET quantity = quantity + ? WHERE id = ?", (full["quantity"], before.id)
                )
                after = self._fetch(tx, before.id)
                self._log(tx, "update", before.id, before, after)
                return Change("update", after, before, merged=True)
        full["added"] = full.get("added") or _now()
        cur = tx.execute(
            f"INSERT INTO cards ({', '.join(STORED)}) VALUES ({', '.join('?' * len(STORED))})",
            tuple(full[c] for c in STORED),
        )
        row = self._fetch(tx, cur.lastrowid)
        self._log(tx, "add", row.id, None, row)
        return Change("add", row)

    def _fetch(self, con: _Tx | sqlite3.Connection, row_id: int) -> Owned:
        if not isinstance(row_id, int) or not 0 < row_id < 2**63:
            raise CollectionError(f"no row {row_id} in the collection")
        r = con.execute(f"SELECT {self._COLS} FROM cards WHERE id = ?", (row_id,)).fetchone()
        if r is None:
            raise CollectionError(f"no row {row_id} in the collection")
        return Owned(*r)

    def update(self, row_id: int, **values: Any) -> Change:
        v = check_fields(values)
        if not v:
            raise CollectionError("nothing to change")
        with self._write() as tx:
            before = self._fetch(tx, row_id)
            sets = ", ".join(f"{k} = ?" for k in v)
            tx.execute(f"UPDATE cards SET {sets} WHERE id = ?", (*v.values(), row_id))
            after = self._fetch(tx, row_id)
            self._log(tx, "update", row_id, before, after)
            return Change("update", after, before)

    def remove(self, row_id: int) -> Change:
        with self._write() as tx:
            before = self._fetch(tx, row_id)
            tx.execute("DELETE FROM cards WHERE id = ?", (row_id,))
            self._log(tx, "remove", row_id, before, None)
            return Change("remove", None, before)

    def undo(self) -> Change | None:
        """Revert the last change not yet undone, all of it (None when there is none)."""
        with self._write() as tx:
            last = tx.execute("SELECT MAX(batch) FROM edits WHERE undone = 0").fetchone()[0]
            if last is None:
                return None
            edits = tx.execute(
                "SELECT id, action, row_id, before, after FROM edits WHERE batch = ? ORDER BY id DESC",
                (last,),
            ).fetchall()
            for _eid, action, row_id, before_s, _after in edits:
                tx.execute("DELETE FROM cards WHERE id = ?", (row_id,))
                if action in ("update", "remove"):  # put the row back as it was
                    self._put(tx, json.loads(before_s))
            seq = tx.execute("SELECT COALESCE(MAX(undone), 0) + 1 FROM edits").fetchone()[0]
            tx.execute("UPDATE edits SET undone = ? WHERE batch = ?", (max(1, seq), last))
            first = edits[-1]
            before = Owned(**json.loads(first[3])) if first[3] else None
            after = Owned(**json.loads(first[4])) if first[4] else None
            return Change(f"undo {first[1]}", before, after, info={"edits": len(edits)})

    def redo(self) -> Change | None:
        """Make again the change undone last, all of it (None when nothing undone can be redone:
        none was undone, or a change was made since)."""
        with self._write() as tx:
            seq = tx.execute("SELECT MAX(undone) FROM edits WHERE undone > 0").fetchone()[0]
            if seq is None:
                return None
            edits = tx.execute(
                "SELECT id, action, row_id, before, after FROM edits WHERE undone = ? ORDER BY id", (seq,)
            ).fetchall()
            for _eid, action, row_id, _before, after_s in edits:
                tx.execute("DELETE FROM cards WHERE id = ?", (row_id,))
                if action in ("add", "update"):  # the row as the change left it
                    self._put(tx, json.loads(after_s))
            tx.execute("UPDATE edits SET undone = 0 WHERE undone = ?", (seq,))
            last = edits[-1]
            after = Owned(**json.loads(last[4])) if last[4] else None
            before = Owned(**json.loads(last[3])) if last[3] else None
            return Change(f"redo {last[1]}", after, before, info={"edits": len(edits)})

    @staticmethod
    def _put(tx: _Tx, d: dict[str, Any]) -> None:
        tx.execute(
            f"INSERT INTO cards ({', '.join(d)}) VALUES ({', '.join('?' * len(d))})", tuple(d.values())
        )
