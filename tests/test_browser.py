"""The scanner page in a real browser: Debian's chromium driven by playwright, against a real
uvicorn on 127.0.0.1. Skipped (with the reason) where either is missing."""

import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium executable (Debian: apt-get install chromium)", allow_module_level=True)

from tests.conftest import build_index  # noqa: E402

from cardid.db.decide import Calibration  # noqa: E402
from cardid.detect import Detection  # noqa: E402
from cardid.recognize import Recognizer  # noqa: E402
from cardid.serve import ServeConfig, create_app, free_port  # noqa: E402

BG = 50


class Finder:
    """The card is whatever differs from the plain background (the test is about the page)."""

    def detect(self, image):
        mask = (np.abs(image.astype(np.int16) - BG).max(axis=2) > 40).astype(np.uint8)
        ys, xs = np.nonzero(mask)
        if len(xs) < 500:
            return []
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        return [Detection(np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), 0.9)]


def _photo(scan, w=640, h=480):
    card = cv2.resize(scan, (224, 312))
    img = np.full((h, w, 3), BG, np.uint8)
    y, x = (h - 312) // 2, (w - 224) // 2
    img[y : y + 312, x : x + 224] = card
    return img


@pytest.fixture(scope="module")
def server(tmp_path_factory, synth_catalog):
    import uvicorn

    root = tmp_path_factory.mktemp("browser")
    model, db = build_index(root, synth_catalog.root, "--calibrate-cards", "6")
    rec = Recognizer.open(model, db, Finder(), fallback=False)
    rec.matcher.calibration = Calibration("fused")  # the tiny random model: accept what verifies
    app = create_app(rec, synth_catalog, ServeConfig())
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    names = [synth_catalog[c].name for c in synth_catalog.ids]
    cid = next(c for c in synth_catalog.ids if names.count(synth_catalog[c].name) == 1)  # no reprint
    yield f"http://127.0.0.1:{port}", cid, synth_catalog, root
    srv.should_exit = True
    th.join(timeout=10)


def _browser(p, *args):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", *args])


def test_upload_a_photo_and_see_the_card(server, tmp_path):
    url, cid, cat, _ = server
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), _photo(cat.load_image(cid))[..., ::-1])
    with sync_api.sync_playwright() as p:
        b = _browser(p)
        page = b.new_page()
        page.goto(url + "/")
        page.set_input_files("#file", str(path))
        page.wait_for_selector(f".card.match[data-card='{cid}']", timeout=30_000)
        assert cat[cid].name in page.inner_text("#cards")
        assert page.locator(".card img").count() >= 1  # the top-5 gallery scans
        b.close()


def _y4m(path, frames):
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


def test_live_camera_confirms_a_card_and_exports_it_as_csv(server, tmp_path):
    url, cid, cat, _ = server
    video = tmp_path / "cam.y4m"
    _y4m(video, [_photo(cat.load_image(cid))] * 20)
    with sync_api.sync_playwright() as p:
        b = _browser(
            p,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        )
        page = b.new_context(accept_downloads=True).new_page()
        page.goto(url + "/")
        page.click("#live")
        page.wait_for_function(
            f"document.querySelector('#scanned').innerText.includes('{cid}')", timeout=60_000
        )
        assert "live: confirmed" in page.inner_text("#status")
        with page.expect_download() as dl:
            page.click("#csv")
        csv = Path(dl.value.path()).read_text(encoding="utf-8").splitlines()
        assert csv[0] == "card_id,name,set,number,count,time"
        assert csv[1].startswith(f'"{cid}","{cat[cid].name}"') and ',"1",' in csv[1]  # confirmed once
        page.click("#live")
        b.close()
