"""The collection in SQLite: rows, merges, checks, undo, several writers, a killed writer."""

import multiprocessing as mp
import os
import signal
import sqlite3
import time

import pytest

from cardid.collection import Collection, CollectionError


def test_add_merge_edit_remove_and_undo_each(tmp_path):
    c = Collection(tmp_path / "c.sqlite")
    a = c.add("base1-4", condition="LP", folder="Binder 1", photo="p1.jpg")
    assert a.action == "add" and a.row.quantity == 1 and a.row.added
    again = c.add("base1-4", quantity=2, condition="LP", folder="Binder 1")
    assert again.merged and again.row.id == a.row.id and again.row.quantity == 3
    other = c.add("base1-4", condition="NM")  # another state: another row
    assert other.row.id != a.row.id and c.count() == 4
    c.update(a.row.id, printing="Holofoil", quantity=5)
    assert c.get(a.row.id).printing == "Holofoil" and c.count() == 6
    c.remove(other.row.id)
    assert [r.id for r in c.rows()] == [a.row.id]
    assert c.undo().action == "undo remove" and len(c.rows()) == 2
    assert c.undo().action == "undo update" and c.get(a.row.id).quantity == 3
    assert c.undo().action == "undo add" and len(c.rows()) == 1
    assert c.undo().action == "undo update" and c.get(a.row.id).quantity == 1  # the merge
    assert c.undo().action == "undo add" and c.rows() == []
    assert c.undo() is None


def test_an_import_is_one_change_and_all_or_nothing(tmp_path):
    c = Collection(tmp_path / "c.sqlite")
    c.add("base1-1")
    c.add_many([{"card_id": "base1-2"}, {"card_id": "base1-3", "quantity": 2}, {"card_id": "base1-1"}])
    assert c.count() == 5
    with pytest.raises(CollectionError, match="condition must be one of"):
        c.add_many([{"card_id": "base1-9"}, {"card_id": "base1-8", "condition": "Mint"}])
    assert c.count() == 5  # the bad row stopped the whole import before anything was written
    c.undo()
    assert [(r.card_id, r.quantity) for r in c.rows()] == [("base1-1", 1)]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"quantity": 0}, "at least 1"),
        ({"quantity": "two"}, "whole number"),
        ({"printing": "Shiny"}, "printing must be one of"),
        ({"colour": "red"}, "unknown field"),
        ({"notes": "x" * 501}, "longer than 500"),
        ({"card_id": " "}, "card_id is empty"),
    ],
)
def test_bad_edits_are_one_clear_error_and_change_nothing(tmp_path, values, message):
    c = Collection(tmp_path / "c.sqlite")
    row = c.add("base1-4").row
    with pytest.raises(CollectionError, match=message):
        c.update(row.id, **values)
    assert c.get(row.id) == row


def test_a_file_that_is_not_a_collection_is_refused_untouched(tmp_path):
    junk = tmp_path / "notes.sqlite"
    junk.write_bytes(b"hello, not a database" * 10)
    with pytest.raises(CollectionError, match="not a cardid collection"):
        Collection(junk)
    assert junk.read_bytes() == b"hello, not a database" * 10
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(CollectionError, match="SQLite file but not a cardid collection"):
        Collection(other)


def test_a_read_only_or_locked_collection_says_so(tmp_path):
    c = Collection(tmp_path / "c.sqlite")
    c.add("base1-4")
    lock = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    busy = Collection(tmp_path / "c.sqlite", timeout=0.2)
    with pytest.raises(CollectionError, match="locked by another program"):
        busy.add("base1-5")
    lock.execute("ROLLBACK")
    lock.close()
    if os.geteuid() != 0:  # root writes through permissions
        os.chmod(tmp_path / "c.sqlite", 0o444)
        with pytest.raises(CollectionError, match="read-only"):
            c.add("base1-6")


def _writer(path, n, start):
    start.wait()
    c = Collection(path)
    for i in range(n):
        c.add(f"base1-{i % 7}", folder=str(os.getpid()))


def test_several_writers_at_once_lose_nothing(tmp_path):
    path = tmp_path / "c.sqlite"
    Collection(path)
    start = mp.get_context("fork").Event()
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, 40, start)) for _ in range(3)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert Collection(path).count() == 120


def _slow_writer(path):
    c = Collection(path)
    i = 0
    while True:
        c.add(f"base1-{i}", merge=False)
        i += 1


def test_a_writer_killed_mid_write_leaves_every_kept_row_intact(tmp_path):
    path = tmp_path / "c.sqlite"
    Collection(path).add("base1-0", quantity=3)
    p = mp.get_context("fork").Process(target=_slow_writer, args=(path,))
    p.start()
    time.sleep(1.0)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    c = Collection(path)
    rows = c.rows()
    assert len(rows) > 2 and rows[0].quantity == 3
    # every kept row has its edit: undo walks back exactly what was written, nothing torn
    con = sqlite3.connect(path)
    edits = con.execute("SELECT COUNT(*) FROM edits").fetchone()[0]
    assert edits == len(rows) and con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
