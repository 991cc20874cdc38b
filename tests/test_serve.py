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
from tests.conftest import build_index

from cardid.db.decide import Calibration
from cardid.printing.ocr import engine as ocr_engine
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
    rec.matcher.calibration = Calibration("fused")  # the tiny random model: accept what verifies
    return TestClient(create_app(rec, cat, ServeConfig(**cfg))), cat


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
    assert health["cards"] == len(cat) and health["ocr"] == ocr_engine()  # numbers read where installed
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
    client, cat = _client(served, queue=1)
    app = client.app
    # hold the only slot: a request whose body never finishes arriving
    import threading

    started = threading.Event()

    def slow_body():
        started.set()
        yield b"\x89PNG"
        time.sleep(1.0)
        yield b"rest"

    t = threading.Thread(
        target=lambda: client.post(
            "/v1/recognize", content=slow_body(), headers={"content-type": "image/png"}
        )
    )
    t.start()
    started.wait(2)
    time.sleep(0.2)
    r = client.post(
        "/v1/recognize", content=_png(cat.load_image(cat.ids[0])), headers={"content-type": "image/png"}
    )
    t.join()
    assert r.status_code == 503 and "busy" in r.json()["error"]
    assert app.state.metrics.rejected == 1


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
    rec.matcher.calibration = Calibration("fused")
    client = TestClient(create_app(rec, cat, ServeConfig()))
    with client.websocket_connect("/v1/live") as ws:
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
