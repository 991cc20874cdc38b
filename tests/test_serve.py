"""The recognition service: in process with httpx, and once through a real uvicorn on 127.0.0.1."""

import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient
from tests.conftest import LOCAL, build_index

from cardid.decision.decide import Calibration
from cardid.decision.match import MatchConfig
from cardid.recognize import Recognizer
from cardid.serve import ServeConfig, create_app, free_port, wait_ready


@pytest.fixture(scope="module")
def served(tmp_path_factory, synth_catalog):
    root = tmp_path_factory.mktemp("serve")
    model, db = build_index(root, synth_catalog.root, "--calibrate-cards", "6")
    return model, db, synth_catalog


def _client(served, **cfg):
    model, db, cat = served
    rec = Recognizer.open(model, db, None)  # each upload is one card crop
    rec = rec.with_(calibration=Calibration("fused"))  # the tiny random model: accept what verifies
    return TestClient(base_url=LOCAL, app=create_app(rec, cat, ServeConfig(**cfg))), cat


def _png(rgb) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def test_recognize_a_scan_by_multipart_and_by_raw_body(served):
    client, cat = _client(served)
    cid = cat.ids[2]
    data = _png(cat.load_image(cid))
    for r in (
        client.post("/v1/recognize", files={"file": ("scan.png", data, "image/png")}),
        client.post("/v1/recognize", content=data, headers={"content-type": "image/png"}),
    ):
        assert r.status_code == 200, r.text
        body = r.json()
        card = body["cards"][0]
        assert card["top"][0]["card_id"] == cid and card["decision"] == "match"
        h, w = cat.load_image(cid).shape[:2]
        assert body["no_card"] is False and body["size"] == [w, h]
    meta = client.get(f"/v1/cards/{cid}").json()
    assert meta["id"] == cid and meta["name"] == cat[cid].name
    img = client.get(f"/v1/cards/{cid}/image")
    assert img.status_code == 200 and Image.open(io.BytesIO(img.content)).size[0] > 8
    health = client.get("/healthz").json()
    # numbers read by Tesseract in process: the lock's ocr extra installs tesserocr and its model
    assert health["cards"] == len(cat) and health["ocr"] == "tesserocr"
    unread = TestClient(
        base_url=LOCAL, app=create_app(Recognizer.open(*served[:2], None, MatchConfig(read_numbers=False)))
    )
    assert unread.get("/healthz").json()["ocr"] is None  # numbers not read: no engine named
    text = client.get("/metrics").text
    assert 'cardid_requests_total{route="/v1/recognize",status="200"} 2' in text
    assert "cardid_recognize_seconds_count 2" in text and "cardid_info{" in text
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "body,ctype,status,words",
    [
        (b"", "image/png", 400, "empty"),
        (b"not an image at all" * 10, "image/jpeg", 400, "corrupt"),
        (None, "image/png", 400, "corrupt"),  # truncated PNG
        (b"{}", "application/json", 415, "send an image"),
        (b"x" * 3000, "image/png", 413, "too large"),
    ],
)
def test_bad_uploads_are_4xx_json_and_the_server_keeps_answering(served, body, ctype, status, words):
    client, cat = _client(served, max_upload_bytes=2000)
    if body is None:
        body = _png(cat.load_image(cat.ids[0])[:40, :40])[:60]
    r = client.post("/v1/recognize", content=body, headers={"content-type": ctype})
    assert r.status_code == status and words in r.json()["error"]
    assert client.get("/healthz").status_code == 200


def test_a_decompression_bomb_is_refused_before_decoding(served, monkeypatch):
    client, _ = _client(served)
    buf = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buf, "PNG")  # ~100 KB on disk, 900 MP decoded
    r = client.post("/v1/recognize", files={"file": ("bomb.png", buf.getvalue(), "image/png")})
    assert r.status_code == 400 and "too large" in r.json()["error"]


def test_no_request_path_reaches_the_file_system(served):
    client, _ = _client(served)
    for cid in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "nope"):
        assert client.get(f"/v1/cards/{cid}/image").status_code == 404
        assert client.get(f"/v1/cards/{cid}").status_code == 404
    r = client.post("/v1/recognize", files={"other": ("x.png", b"123", "image/png")})
    assert r.status_code == 400 and "'file'" in r.json()["error"]


def test_a_full_queue_answers_503(served):
    """The queue counts recognitions: with one place, a second photo while one is being recognised
    is answered 503 at once."""
    import threading

    client, cat = _client(served, queue=1)
    rec = client.app.state.served.recognizer
    inside, release = threading.Event(), threading.Event()
    real = rec.timed

    def slow(image, top):
        inside.set()
        release.wait(10)
        return real(image, top)

    rec.timed = slow
    png = _png(cat.load_image(cat.ids[0]))
    first = []
    t = threading.Thread(
        target=lambda: first.append(
            client.post("/v1/recognize", content=png, headers={"content-type": "image/png"})
        )
    )
    t.start()
    assert inside.wait(10)
    r = client.post("/v1/recognize", content=png, headers={"content-type": "image/png"})
    release.set()
    t.join()
    assert r.status_code == 503 and "busy" in r.json()["error"]
    assert first[0].status_code == 200 and client.app.state.metrics.rejected == 1


class _Uvicorn:
    """An app on a real uvicorn in this process (a thread), on 127.0.0.1."""

    def __init__(self, app):
        import threading

        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="info"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert wait_ready(f"http://127.0.0.1:{self.port}", 30)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


def _half_upload(port: int, declared: int = 100_000, sent: bytes = b"\x89PNG\r\n"):
    """A client that sends an upload's headers and the first bytes of its body, then nothing."""
    import socket

    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"POST /v1/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        + f"Content-Length: {declared}\r\n\r\n".encode()
        + sent
    )
    return s


@pytest.mark.slow  # in `make test`; left out of the edit loop
def test_slow_uploads_hold_no_queue_place_and_time_out(served):
    """Eight clients that open uploads and send nothing more: a normal client is still answered
    at once (a queue place is taken only once a body has arrived), and the slow ones get 408."""
    import httpx

    client, cat = _client(served, queue=2, body_timeout=3.0)
    with _Uvicorn(client.app) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = [_half_upload(port) for _ in range(8)]
        try:
            time.sleep(0.3)  # every slow client is inside the server now
            t = time.monotonic()
            for i in range(3):
                r = httpx.post(
                    url + "/v1/recognize",
                    files={"file": ("p.png", _png(cat.load_image(cat.ids[i])), "image/png")},
                    timeout=30,
                )
                assert r.status_code == 200, r.text
                assert r.json()["cards"][0]["top"][0]["card_id"] == cat.ids[i]
            assert time.monotonic() - t < 2.5  # answered before any slow client timed out
            for s in slow:  # and each slow client is told why, after body_timeout
                s.settimeout(10)
                reply = b""
                while chunk := s.recv(4096):  # until the server closes the connection
                    reply += chunk
                text = reply.decode(errors="replace")
                assert text.startswith("HTTP/1.1 408") and "upload too slow" in text
        finally:
            for s in slow:
                s.close()
    text = client.get("/metrics").text
    assert 'cardid_requests_total{route="/v1/recognize",status="408"} 8' in text


def test_an_aborted_upload_is_one_log_line(served, caplog):
    import logging

    client, _ = _client(served)
    with caplog.at_level(logging.INFO), _Uvicorn(client.app) as url:
        port = int(url.rsplit(":", 1)[1])
        _half_upload(port).close()  # the client goes away mid-upload
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("aborted" in r.getMessage() for r in caplog.records):
            time.sleep(0.05)
    aborted = [r for r in caplog.records if "upload aborted" in r.getMessage()]
    assert len(aborted) == 1 and aborted[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]  # no traceback
    assert 'status="499"} 1' in client.get("/metrics").text


def test_metrics_escape_label_values(served, tmp_path):
    import re
    import shutil

    model, db, cat = served
    odd = tmp_path / 'a "quoted" \\ db'
    shutil.copytree(db, odd)
    rec = Recognizer.open(model, odd, None)
    text = TestClient(base_url=LOCAL, app=create_app(rec, cat)).get("/metrics").text
    info = next(line for line in text.splitlines() if line.startswith("cardid_info{"))
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', info))
    unescape = labels["db"].replace('\\"', '"').replace("\\\\", "\\")
    assert unescape == odd.name and info.endswith("} 1")  # the folder's name, never where it lies
    assert set(labels) == {"version", "model", "db", "cards"}


def test_live_refuses_pages_of_another_origin(served):
    from starlette.websockets import WebSocketDisconnect

    client, _ = _client(served)
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("ws://127.0.0.1/v1/live", headers={"origin": "https://evil.example"}),
    ):
        pass
    for origin in (None, "http://127.0.0.1"):  # a program (no Origin), or the server's own page
        headers = {"origin": origin} if origin else {}
        with client.websocket_connect("ws://127.0.0.1/v1/live", headers=headers) as ws:
            ws.send_text("reset")
            assert ws.receive_json() == {"reset": True}
    allowed, _ = _client(served, allow_origins=("https://scan.example",))
    with allowed.websocket_connect(
        "ws://127.0.0.1/v1/live", headers={"origin": "https://scan.example"}
    ) as ws:
        ws.send_text("reset")
        assert ws.receive_json() == {"reset": True}
    assert 'route="refused",status="403"} 1' in client.get("/metrics").text


def test_a_db_replaced_on_disk_is_served_with_its_new_cards_and_thumbnails(served, tmp_path):
    """``index add`` on a served DB: the next request serves the new DB, added cards included
    (their scans from the catalog they were added from); a copy of the tree works from any folder."""
    import shutil

    from cardid.cli import main
    from cardid.synth.cards import synth_cards

    model, db, cat = served
    work = tmp_path / "tree"
    shutil.copytree(db, work / "db")
    shutil.copytree(cat.root, work / "catalog")
    live_db = work / "db"
    # the DB names its catalog absolutely and relative to itself: rewrite it as if built in `work`
    meta = json.loads((live_db / "db.json").read_text())
    meta["catalogs"] = [{"path": "/nowhere/catalog", "relative": "../catalog"}]
    (live_db / "db.json").write_text(json.dumps(meta))
    rec = Recognizer.open(model, live_db, None)
    rec = rec.with_(calibration=Calibration("fused"))
    client = TestClient(
        base_url=LOCAL, app=create_app(rec, None, ServeConfig(reload_check_s=0), db_catalog=True)
    )
    assert client.get(f"/v1/cards/{cat.ids[0]}/image").status_code == 200  # found relative to the DB
    n = client.get("/healthz").json()["cards"]
    other = synth_cards(tmp_path / "other", n=2, seed=99, height=160)
    scans = tmp_path / "new-set"  # a folder of <card_id>.png scans
    scans.mkdir()
    for i, cid in enumerate(other.ids):
        shutil.copy(other.image_path(cid), scans / f"new-{i + 1}.png")
    assert main(["index", "add", "--model", str(model), "--db", str(live_db), "--catalog", str(scans)]) == 0
    from cardid.catalog.records import Catalog

    new = Catalog.open(scans)
    health = client.get("/healthz").json()
    assert health["cards"] == n + 2 and health["db_reloads"] == 1
    for cid in new.ids:
        assert client.get(f"/v1/cards/{cid}").status_code == 200
        assert client.get(f"/v1/cards/{cid}/image").status_code == 200  # the added card's scan
    r = client.post(
        "/v1/recognize", content=_png(new.load_image(new.ids[1])), headers={"content-type": "image/png"}
    )
    assert r.json()["cards"][0]["top"][0]["card_id"] == new.ids[1]


@pytest.mark.slow  # in `make test`; left out of the edit loop
def test_cardid_serve_on_a_real_uvicorn(served, tmp_path):
    model, db, cat = served
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cardid.cli",
            "serve",
            "--model",
            str(model),
            "--db",
            str(db),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        import httpx

        url = f"http://127.0.0.1:{port}"
        if not wait_ready(url, 60):
            pytest.fail("the server did not come up: " + proc.stdout.read1().decode(errors="replace"))
        r = httpx.post(
            url + "/v1/recognize",
            files={"file": ("p.png", _png(cat.load_image(cat.ids[1])), "image/png")},
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["cards"][0]["top"][0]["card_id"] == cat.ids[1]
        assert json.loads(httpx.get(url + "/healthz").text)["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_page_is_served_without_a_build_step_or_cdn(served):
    client, _ = _client(served)
    r = client.get("/")
    assert r.status_code == 200 and "cardid scanner" in r.text and "/v1/live" in r.text
    assert "http://" not in r.text.replace("http://testserver", "") and "https://" not in r.text  # no CDN


def test_live_frames_are_tracked_and_a_steady_card_confirmed_once(served):
    model, db, cat = served
    cid = cat.ids[3]
    scan = cat.load_image(cid)
    photo = np.full((scan.shape[0] + 80, scan.shape[1] + 80, 3), 40, np.uint8)
    photo[40:-40, 40:-40] = scan
    from cardid.detect import Detection

    h, w = scan.shape[:2]
    quad = np.float32([[40, 40], [40 + w, 40], [40 + w, 40 + h], [40, 40 + h]])

    class OneCard:  # a finder that sees exactly the card: the test is about the live loop
        def detect(self, image):
            return [Detection(quad, 0.9)]

    rec = Recognizer.open(model, db, OneCard())
    rec = rec.with_(calibration=Calibration("fused"))
    client = TestClient(base_url=LOCAL, app=create_app(rec, cat, ServeConfig()))
    with client.websocket_connect("ws://127.0.0.1/v1/live") as ws:
        ws.send_bytes(b"not a frame")
        assert "corrupt" in ws.receive_json()["error"]  # and the socket stays open
        scenes = []
        for _ in range(7):
            ws.send_bytes(_png(photo))
            scenes.append(ws.receive_json())
        ws.send_text("reset")
        assert ws.receive_json() == {"reset": True}
    confirmed = [c for s in scenes for c in s["confirmed"]]
    assert [c["card_id"] for c in confirmed] == [cid]
    assert scenes[0]["state"] == "stabilising" and scenes[-1]["state"] == "confirmed"
    assert confirmed[0]["info"]["card"]["name"] == cat[cid].name
