"""The hostile pass's probes against the server: foreign pages, other hosts, the network, big
bodies, long review batches, odd values. Each failed before its fix; nothing is lost in any."""

import json

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from tests.conftest import LOCAL

from cardid.collection import Collection
from cardid.recognize import Recognizer
from cardid.serve import ServeConfig, create_app


@pytest.fixture
def index(served_index):
    return served_index


def _app(index, tmp_path, labelled=False, **cfg):
    from cardid.serve.labelled import LabelledCrops

    coll = Collection(tmp_path / "c.sqlite")
    crops = LabelledCrops(tmp_path / "labelled") if labelled else None
    app = create_app(Recognizer.open(*index), config=ServeConfig(**cfg), collection=coll, labelled=crops)
    return app, coll, crops


@pytest.fixture
def served(index, tmp_path):
    app, coll, _ = _app(index, tmp_path)
    return TestClient(app, base_url=LOCAL), coll, list(Recognizer.open(*index).matcher.db.ids)


def _fill(c, ids, n=3):
    for i in range(n):
        assert c.post("/v1/collection", json={"card_id": ids[i], "quantity": 3}).status_code == 201


def test_a_foreign_page_neither_adds_nor_undoes(served):
    """Chromium sends a foreign page's no-cors POST with its Origin and ``text/plain``: refused,
    whatever the body says; the collection keeps its 3 rows, 9 cards."""
    c, coll, ids = served
    _fill(c, ids)
    evil = {"origin": "https://evil.example", "content-type": "text/plain"}
    for path, body in (("/v1/collection", json.dumps({"card_id": ids[0]})), ("/v1/collection/undo", "")):
        r = c.post(path, content=body, headers=evil)
        assert r.status_code == 403 and "another origin" in r.json()["error"]
    # the same without an Origin but marked cross-site by the browser, or JSON from the foreign page
    assert c.post("/v1/collection/undo", json={}, headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert (
        c.post("/v1/collection/undo", json={}, headers={"origin": "https://evil.example"}).status_code == 403
    )
    assert c.delete("/v1/collection/1", headers={"origin": "null"}).status_code == 403
    assert (
        c.patch("/v1/collection/1", json={"quantity": 1}, headers={"origin": "http://x"}).status_code == 403
    )
    assert coll.count() == 9 and len(coll.rows()) == 3
    # text/plain from the page's own origin (or a program) is refused too: a change is JSON
    r = c.post(
        "/v1/collection", content=json.dumps({"card_id": ids[0]}), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415 and coll.count() == 9
    # the server's own page changes things
    r = c.post("/v1/collection/undo", json={}, headers={"origin": LOCAL, "sec-fetch-site": "same-origin"})
    assert r.status_code == 200 and coll.count() == 6


def test_another_host_name_is_not_answered(index, tmp_path):
    """DNS rebinding: a page of evil.example re-pointed at 127.0.0.1 says ``Host: evil.example``."""
    app, _coll, _ = _app(index, tmp_path)
    evil = TestClient(app, base_url="http://evil.example:8000")
    for r in (evil.get("/v1/collection"), evil.get("/"), evil.post("/v1/collection/undo", json={})):
        assert r.status_code == 421 and "evil.example" in r.json()["error"]
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), evil.websocket_connect("ws://evil.example/v1/live"):
        pass
    for host in ("http://localhost:8000", "http://[::1]:8000", "http://192.168.1.20:8000"):
        assert TestClient(app, base_url=host).get("/v1/collection").status_code == 200
    named = TestClient(
        _app(index, tmp_path / "b", allow_hosts=("scanner.lan",))[0], base_url="http://scanner.lan"
    )
    assert named.get("/v1/collection").status_code == 200


def test_beyond_this_machine_every_route_asks_for_the_token(index, tmp_path):
    app, coll, _ = _app(index, tmp_path, token="s3cret-token")
    c = TestClient(app, base_url="http://192.168.1.20:8000")
    ids = list(Recognizer.open(*index).matcher.db.ids)
    assert c.get("/v1/collection").status_code == 401
    assert c.post("/v1/collection", json={"card_id": ids[0]}).status_code == 401
    assert c.get("/v1/collection", headers={"authorization": "Bearer wrong"}).status_code == 401
    health = c.get("/healthz")  # liveness stays open, and names no path on this machine
    assert health.status_code == 200 and "/" not in health.json()["db"] and str(tmp_path) not in health.text
    ok = {"authorization": "Bearer s3cret-token"}
    assert c.post("/v1/collection", json={"card_id": ids[0]}, headers=ok).status_code == 201
    # the printed link keeps the token in a SameSite=Strict cookie; the page then works without it
    r = c.get("/?token=s3cret-token", follow_redirects=False)
    assert r.status_code == 303 and "SameSite=Strict" in r.headers["set-cookie"]
    assert c.get("/").status_code == 200 and c.get("/v1/collection").json()["count"] == 1
    assert coll.count() == 1


def test_redo_takes_back_an_undo_until_a_new_change(served):
    c, coll, ids = served
    _fill(c, ids)
    for _ in range(3):
        c.post("/v1/collection/undo", json={})
    assert coll.count() == 0
    r = c.post("/v1/collection/redo", json={})
    assert r.json()["action"] == "redo add" and r.json()["count"] == 3 and coll.rows()[0].card_id == ids[0]
    c.post("/v1/collection/redo", json={})
    assert [o.card_id for o in coll.rows()] == ids[:2]
    c.post("/v1/collection", json={"card_id": ids[4]})  # a new change: the third undo is undone for good
    assert c.post("/v1/collection/redo", json={}).json()["action"] is None
    assert [o.card_id for o in coll.rows()] == [ids[0], ids[1], ids[4]]


def test_collection_bodies_are_bounded_and_checked(served):
    c, coll, ids = served
    big = json.dumps({"card_id": ids[0], "notes": "x" * 200_000})
    r = c.post("/v1/collection", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["error"]
    r = c.post("/v1/collection", json={"card_id": ids[0], "how": "x" * 1000})
    assert r.status_code == 400 and "how must be one of" in r.json()["error"]
    for bad in (
        {"self": 1},
        {"row_id": 2},
        {"merge": False},
        {"kept": ["../x", ""]},
        {"photo": "/etc/passwd"},
    ):
        r = c.post("/v1/collection", json={"card_id": ids[0], **bad})
        assert r.status_code == 400 and "unknown field" in r.json()["error"], bad
    assert c.post("/v1/collection", json={"card_id": ids[0], "index": 1e300}).status_code == 400
    for q in (1e30, "Infinity", 2**63, 2.9, True):
        r = c.post("/v1/collection", json={"card_id": ids[0], "quantity": q})
        assert r.status_code == 400 and "quantity" in r.json()["error"], q
    raw = json.dumps({"card_id": ids[0]})[:-1] + ', "index": 1e999}'
    assert (
        c.post("/v1/collection", content=raw, headers={"content-type": "application/json"}).status_code == 400
    )
    assert c.post("/v1/collection", json={"card_id": 5}).status_code == 404
    assert c.patch(f"/v1/collection/{2**64}", json={"quantity": 2}).status_code == 400
    assert c.delete(f"/v1/collection/{2**64}").status_code == 400
    nested = "[" * 100_000 + "]" * 100_000
    r = c.post("/v1/collection", content=nested[:60_000], headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert coll.count() == 0


def _photo_of(cat, cid, another: int = 0) -> bytes:
    """The card's scan as a photo; ``another``: a different photo of the same card (a border)."""
    if not another:
        return cat.image_path(cid).read_bytes()
    import cv2

    from cardid.images import load_rgb

    img = cv2.copyMakeBorder(
        load_rgb(cat.image_path(cid)), *[8 * another] * 4, cv2.BORDER_CONSTANT, value=(90, 60, 40)
    )
    return cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()


def test_a_review_batch_of_many_photos_keeps_every_card(index, tmp_path, synth_catalog):
    """40 uploads, another tab's and empty photos between them: the 1st photo's card is still
    added with its crop; nothing of the uploads is held in memory."""
    import numpy as np
    from PIL import Image

    app, _coll, labelled = _app(index, tmp_path, labelled=True)
    c = TestClient(app, base_url=LOCAL)
    cid = synth_catalog.ids[1]
    head = {"content-type": "image/png"}
    tokens = [c.post("/v1/recognize", content=_photo_of(synth_catalog, cid), headers=head).json()["photo"]]
    import io

    blank = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(blank, "PNG")
    for i in range(39):
        body = _photo_of(synth_catalog, synth_catalog.ids[i % 6]) if i % 3 else blank.getvalue()
        tokens.append(c.post("/v1/recognize", content=body, headers=head).json().get("photo"))
    r = c.post("/v1/collection", json={"card_id": cid, "photo_token": tokens[0], "index": 0})
    assert r.status_code == 201 and labelled.count() == 1
    # a reloaded page (a new server on the same folder) still adds a kept photo's card
    app2, _, labelled2 = _app(index, tmp_path, labelled=True)
    c2 = TestClient(app2, base_url=LOCAL)
    r = c2.post("/v1/collection", json={"card_id": cid, "photo_token": tokens[1], "index": 0})
    assert r.status_code == 201 and labelled2.count() == 2
    for bad in ("../../etc", "x" * 16, tokens[1][:-1]):
        r = c2.post("/v1/collection", json={"card_id": cid, "photo_token": bad, "index": 0})
        assert r.status_code == 400 and "no longer kept" in r.json()["error"]


def test_kept_photos_are_bounded_by_count_and_bytes(tmp_path):
    import numpy as np

    from cardid.serve.labelled import RecentPhotos

    img = np.random.default_rng(0).integers(0, 255, (64, 48, 3), np.uint8)
    kept = RecentPhotos(tmp_path, max_photos=5)
    tokens = [kept.put(img, [{"corners": None}]) for _ in range(8)]
    assert len(kept) == 5 and len(list(tmp_path.iterdir())) == 5
    assert kept.crop(tokens[-1], 0).shape == img.shape
    with pytest.raises(Exception, match="no longer kept"):
        kept.crop_file(tokens[0], 0)
    small = RecentPhotos(tmp_path / "b", max_bytes=1)  # each photo is over the bound: only the last
    for _ in range(3):
        small.put(img, [{"corners": None}])
    assert len(small) == 0 or len(small) == 1
    assert kept.put(img, []) is None  # a photo with no card takes no place


def test_the_labelled_set_follows_undo_removal_and_correction(index, tmp_path, synth_catalog):
    """Every undone Enter, removed row or corrected card takes its crop's label with it."""
    import csv

    app, _coll, labelled = _app(index, tmp_path, labelled=True)
    c = TestClient(app, base_url=LOCAL)
    ids = synth_catalog.ids
    head = {"content-type": "image/png"}

    def labels():
        with labelled.csv.open() as f:
            return [r["card_id"] for r in csv.DictReader(f)]

    def add(cid, another=0):
        body = _photo_of(synth_catalog, cid, another)
        token = c.post("/v1/recognize", content=body, headers=head).json()["photo"]
        return c.post("/v1/collection", json={"card_id": cid, "photo_token": token, "index": 0}).json()

    first = add(ids[0])
    add(ids[0], another=1)  # another photo of it, merged into the same row: its crop is labelled too
    assert labels() == [ids[0], ids[0]]
    c.post("/v1/collection/undo", json={})  # the second Enter undone: its crop is no label now
    assert labels() == [ids[0]]
    c.post("/v1/collection/redo", json={})
    assert labels() == [ids[0], ids[0]]
    row = first["row"]["id"]
    c.patch(f"/v1/collection/{row}", json={"card_id": ids[3]})  # it was another card: both relabelled
    assert labels() == [ids[3], ids[3]]
    c.delete(f"/v1/collection/{row}")
    assert labels() == []
    c.post("/v1/collection/undo", json={})
    assert labels() == [ids[3], ids[3]]


def test_what_counts_as_this_machine():
    from cardid.serve.guard import host_allowed, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert (
        host_allowed("127.0.0.1:8000", ())
        and host_allowed("[::1]:8000", ())
        and host_allowed("app.localhost", ())
    )
    assert (
        not host_allowed("evil.example", ())
        and not host_allowed("", ())
        and not host_allowed("localhost.evil.example", ())
    )
    assert host_allowed("evil.example", ("*",)) and host_allowed("Scanner.LAN:80", ("scanner.lan",))


def test_an_add_waiting_on_the_collection_lock_holds_up_nothing_else(index, tmp_path):
    import sqlite3
    import threading
    import time

    coll = Collection(tmp_path / "c.sqlite", timeout=3.0)
    c = TestClient(create_app(Recognizer.open(*index), collection=coll), base_url=LOCAL)
    cid = Recognizer.open(*index).matcher.db.ids[0]
    c.get("/healthz")
    blocker = sqlite3.connect(coll.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a CLI import holding the write lock
    answers = []
    t = threading.Thread(target=lambda: answers.append(c.post("/v1/collection", json={"card_id": cid})))
    t.start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    assert c.get("/healthz").status_code == 200
    waited = time.perf_counter() - t0
    blocker.execute("ROLLBACK")
    blocker.close()
    t.join()
    assert waited < 1.5, waited  # answered while the add still waited (it waits up to 3 s)
    assert answers[0].status_code in (201, 503)


def test_the_same_photo_uploaded_again_is_said_to_be_a_repeat_even_re_encoded(index, tmp_path, synth_catalog):
    """Its cards are not offered again (no crop kept for them); a restarted server still knows it;
    another photo of the same card is no repeat."""
    import cv2

    from cardid.images import load_rgb

    app, _coll, _labelled = _app(index, tmp_path, labelled=True)
    c = TestClient(app, base_url=LOCAL)
    cid = synth_catalog.ids[2]
    png = _photo_of(synth_catalog, cid)
    first = c.post("/v1/recognize", files={"file": ("front.png", png, "image/png")}).json()
    assert "repeat_of" not in first and first["photo"]
    again = c.post("/v1/recognize", files={"file": ("copy.png", png, "image/png")}).json()
    assert again["repeat_of"]["name"] == "front.png" and "photo" not in again
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(load_rgb(synth_catalog.image_path(cid)), cv2.COLOR_RGB2BGR))[1]
    app2, _, _ = _app(index, tmp_path, labelled=True)  # restarted on the same folder
    c2 = TestClient(app2, base_url=LOCAL)
    r = c2.post("/v1/recognize", files={"file": ("saved-again.jpg", jpeg.tobytes(), "image/jpeg")}).json()
    assert r["repeat_of"]["name"] == "front.png"
    other = c2.post(
        "/v1/recognize", files={"file": ("other.png", _photo_of(synth_catalog, cid, 1), "image/png")}
    )
    assert "repeat_of" not in other.json() and other.json()["photo"]
