"""The scanner page in a real browser: Debian's chromium driven by playwright, against a real
uvicorn on 127.0.0.1 keeping a real SQLite collection. Skipped (with the reason) where either is
missing. Where a decision the tiny random model cannot make is needed (an ambiguous card, a
binder page), the recognition answer is stood in for at the network layer; everything the page
then does (review, pick, search, keep, export) goes to the real server."""

import csv
import io
import json
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


from cardid.collection import Collection  # noqa: E402
from cardid.collection.variants import variants_for  # noqa: E402
from cardid.decision.decide import Calibration  # noqa: E402
from cardid.detect import Detection  # noqa: E402
from cardid.recognize import Recognizer  # noqa: E402
from cardid.serve import ServeConfig, create_app, free_port  # noqa: E402
from cardid.serve.labelled import LabelledCrops  # noqa: E402

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


@pytest.fixture
def server(served_index, synth_catalog, tmp_path):
    import uvicorn

    model, db = served_index
    rec = Recognizer.open(model, db, Finder(), fallback=False)
    rec = rec.with_(calibration=Calibration("fused"))  # the tiny random model: accept what verifies
    coll = Collection(tmp_path / "collection.sqlite")
    labelled = LabelledCrops(tmp_path / "labelled")
    app = create_app(rec, synth_catalog, ServeConfig(), collection=coll, labelled=labelled)
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
    yield {
        "url": f"http://127.0.0.1:{port}",
        "cid": cid,
        "cat": synth_catalog,
        "coll": coll,
        "labelled": labelled,
    }
    srv.should_exit = True
    th.join(timeout=10)


def _browser(p, *args):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", *args])


def _rows(page):
    return page.eval_on_selector_all("#rows tr", "trs => trs.map(t => t.children[0].innerText)")


def _card(cat, cid):
    r = cat[cid]
    return {
        "card_id": cid,
        "name": r.name,
        "set_id": r.set_id,
        "set_name": "",
        "number": r.number,
        "score": 1.0,
    }


def _answer(cards, binder=None):
    out = {"cards": cards, "no_card": not cards, "ms": 1.0, "size": [640, 480]}
    if binder:
        out["binder"] = binder
    return out


def test_upload_confirm_with_the_keyboard_and_find_it_again_after_a_reload(server, tmp_path):
    cid, cat = server["cid"], server["cat"]
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), _photo(cat.load_image(cid))[..., ::-1])
    with sync_api.sync_playwright() as p:
        b = _browser(p)
        page = b.new_page()
        page.goto(server["url"] + "/")
        assert page.locator("#video").is_hidden()  # no grey box where the hidden video is
        page.set_input_files("#file", str(path))
        page.wait_for_selector(".item.match.current", timeout=30_000)
        assert cat[cid].name in page.inner_text("#queue")
        page.locator("h1").click()  # the keyboard goes to the page, not to a form field
        # before adding it: its language (l cycles) and its folder (f types it, Enter goes back)
        page.keyboard.press("l")
        page.keyboard.press("l")
        assert page.locator('.item.current [data-q="language"]').input_value() == "German"
        # p cycles the printings its card can have (its rarity and set era), no others
        want = variants_for(cat[cid])
        page.wait_for_function(
            f"document.querySelector('.item.current .fields').innerText.includes({want[0]!r})"
        )
        page.keyboard.press("p")
        page.wait_for_function(
            f"document.querySelector('.item.current .fields').innerText.includes({want[1 % len(want)]!r})"
        )
        page.keyboard.press("f")
        page.keyboard.type("Binder 2")
        page.keyboard.press("Enter")  # leaves the folder field: does not add the card yet
        assert server["coll"].count() == 0
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"[...document.querySelectorAll('#rows tr')].some(t => t.innerText.includes('{cid}'))"
        )
        page.reload()
        page.wait_for_function(f"document.querySelector('#rows').innerText.includes('{cid}')")
        offered = page.eval_on_selector_all(
            '#rows select[data-f="printing"] option', "os => os.map(o => o.value)"
        )
        b.close()
    rows = server["coll"].rows()
    assert [(r.card_id, r.language, r.folder, r.printing) for r in rows] == [
        (cid, "German", "Binder 2", want[1 % len(want)])
    ]
    assert offered == want
    assert server["labelled"].count() == 1  # the confirmed card is a labelled real photo now


def test_pick_an_ambiguous_printing_and_correct_wrong_and_unknown_cards_by_search(server, tmp_path):
    cat, coll = server["cat"], server["coll"]
    a, b_, c, d = (cat.ids[i] for i in (1, 2, 3, 4))
    cards = [
        {
            "decision": "ambiguous",
            "card": None,
            "ambiguous_between": [_card(cat, a), _card(cat, b_)],
            "top": [],
            "corners": [[10, 10], [100, 10], [100, 140], [10, 140]],
        },
        {
            "decision": "unknown",
            "card": None,
            "ambiguous_between": [],
            "top": [],
            "corners": [[200, 10], [290, 10], [290, 140], [200, 140]],
        },
        {
            "decision": "match",
            "card": _card(cat, a),
            "ambiguous_between": [],
            "top": [_card(cat, a)],
            "corners": [[400, 10], [490, 10], [490, 140], [400, 140]],
        },
    ]
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.full((480, 640, 3), 90, np.uint8))
    with sync_api.sync_playwright() as p:
        br = _browser(p)
        page = br.new_page()
        page.route("**/v1/recognize*", lambda r: r.fulfill(json=_answer(cards)))
        page.goto(server["url"] + "/")
        page.set_input_files("#file", str(path))
        page.wait_for_selector(".item.ambiguous.current")
        page.locator("h1").click()
        page.keyboard.press("2")  # the second printing
        page.wait_for_selector(".item.unknown.current")
        for target in (c, d):  # the unknown card, then the wrong match: both found by search
            page.keyboard.press("/")
            page.fill("#search", f"{cat[target].name} {cat[target].number}")
            page.wait_for_function(f"document.querySelector('#results').innerText.includes('{target}')")
            page.wait_for_selector("#results div.sel")
            page.keyboard.press("Enter")
            page.wait_for_function(f"document.querySelector('#rows').innerText.includes('{target}')")
        br.close()
    assert sorted(r.card_id for r in coll.rows()) == sorted([b_, c, d])


def test_a_binder_session_of_a_hundred_cards_with_the_keyboard_only(server, tmp_path):
    cat, coll = server["cat"], server["coll"]
    pages = []
    for n in range(12):
        cards = []
        for k in range(9):
            cid = cat.ids[(n * 9 + k) % len(cat)]
            x, y = 20 + (k % 3) * 100, 20 + (k // 3) * 140
            cards.append({"decision": "match", "card": _card(cat, cid), "ambiguous_between": [], "top": [_card(cat, cid)],
                          "corners": [[x, y], [x + 90, y], [x + 90, y + 130], [x, y + 130]], "pocket": k + 1})  # fmt: skip
        pages.append(_answer(cards, {"rows": 3, "cols": 3, "filled": 9}))
    files = []
    for n in range(12):
        files.append(tmp_path / f"page{n:02d}.png")
        cv2.imwrite(str(files[-1]), np.full((480, 640, 3), 90, np.uint8))
    served = iter(pages)
    with sync_api.sync_playwright() as p:
        br = _browser(p)
        page = br.new_page()
        page.route("**/v1/recognize*", lambda r: r.fulfill(json=next(served)))
        page.goto(server["url"] + "/")
        page.select_option("#binder", "3x3")
        page.fill("#folder", "Binder A")
        page.set_input_files("#file", [str(f) for f in files])
        page.wait_for_function("document.querySelectorAll('.item').length === 108", timeout=60_000)
        assert "12 page(s)" in page.inner_text("#pending") and "page 12 pocket 9" in page.inner_text("#queue")
        page.locator("h1").click()
        for _ in range(108):
            page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelector('#pending').innerText.startsWith('0 to review')", timeout=60_000
        )
        br.close()
    assert coll.count() == 108 and {r.folder for r in coll.rows()} == {"Binder A"}


def test_every_export_downloads_in_its_apps_form(server):
    cat, coll = server["cat"], server["coll"]
    coll.add(cat.ids[0], quantity=2, condition="LP", printing="Holofoil")
    heads = {
        "tcgplayer": "Quantity,Name,Simple Name,Set,Card Number,Set Code,Printing,Condition,Language,Rarity,Product ID,SKU",
        "collectr": "Portfolio Name,Category,Set,Product Name,Card Number,Rarity,Variance,Grade,Card Condition",
        "dragonshield": "sep=,",
        "tcgcollector": "TCG region,Card name,Card number,Card number sorting order,Expansion,Rarity,Card variant",
        "cardid": "card_id,name,set_id,set_name,number,rarity,quantity,condition",
    }
    with sync_api.sync_playwright() as p:
        br = _browser(p)
        page = br.new_context(accept_downloads=True).new_page()
        page.goto(server["url"] + "/")
        for fmt, head in heads.items():
            page.select_option("#format", fmt)
            with page.expect_download() as dl:
                page.click("#export")
            raw = Path(dl.value.path()).read_bytes().decode("utf-8")
            assert raw.lstrip("\ufeff").startswith(head), fmt
            assert raw.startswith("\ufeff") == (fmt != "dragonshield"), fmt
            if fmt == "cardid":
                row = next(csv.DictReader(io.StringIO(raw.lstrip("\ufeff"))))
                assert (row["card_id"], row["quantity"], row["condition"], row["printing"]) == (
                    cat.ids[0],
                    "2",
                    "LP",
                    "Holofoil",
                )
        page.select_option("#format", "json")
        with page.expect_download() as dl:
            page.click("#export")
        assert json.loads(Path(dl.value.path()).read_text())["cards"][0]["quantity"] == 2
        br.close()


def test_the_page_says_what_went_wrong_and_never_hangs(server, tmp_path):
    from PIL import Image

    cid, cat = server["cid"], server["cat"]
    tiff = tmp_path / "scan.tiff"  # the server reads TIFF; chromium does not show it
    Image.fromarray(_photo(cat.load_image(cid))).save(tiff)
    png = tmp_path / "p.png"
    cv2.imwrite(str(png), np.full((480, 640, 3), 90, np.uint8))
    with sync_api.sync_playwright() as p:
        br = _browser(p)
        page = br.new_page()
        page.goto(server["url"] + "/")
        page.set_input_files("#file", str(tiff))
        page.wait_for_selector(".item.match", timeout=30_000)  # drawn from the server's own rendering
        assert "1 card in scan.tiff" in page.inner_text("#status")
        page.route(
            "**/v1/recognize*",
            lambda r: r.fulfill(status=500, body="boom: out of memory", content_type="text/plain"),
        )
        page.set_input_files("#file", str(png))
        page.wait_for_function("document.querySelector('#status').innerText.includes('boom: out of memory')")
        page.unroute("**/v1/recognize*")
        page.route("**/v1/recognize*", lambda r: r.abort())
        page.set_input_files("#file", str(png))
        page.wait_for_function("document.querySelector('#status').innerText.includes('server unreachable')")
        br.close()


def _y4m(path, frames):
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


def test_live_camera_confirms_a_card_into_the_review_queue(server, tmp_path):
    cid, cat = server["cid"], server["cat"]
    video = tmp_path / "cam.y4m"
    _y4m(video, [_photo(cat.load_image(cid))] * 20)
    with sync_api.sync_playwright() as p:
        b = _browser(
            p,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        )
        page = b.new_page()
        page.goto(server["url"] + "/")
        page.click("#live")
        page.wait_for_selector(".item.match.current", timeout=60_000)
        assert "live camera" in page.inner_text("#queue")
        page.click("#live")
        page.locator("h1").click()
        page.keyboard.press("Enter")
        page.wait_for_function(f"document.querySelector('#rows').innerText.includes('{cid}')")
        b.close()
    assert server["coll"].count() == 1
    # the frame it was confirmed in was kept: its crop is a labelled photo like an upload's
    assert server["labelled"].count() == 1
    crop = cv2.imread(
        str(server["labelled"].root / next(csv.DictReader(server["labelled"].csv.open()))["file"])
    )
    assert crop is not None and crop.shape[0] > crop.shape[1]  # the card, upright, not the frame


def test_a_foreign_page_cannot_change_the_collection(server):
    """In Chromium, a page of another origin sends no-cors text/plain POSTs (add 500 cards, undo
    everything): refused; the collection keeps its rows and cards."""
    cid = server["cid"]
    server["coll"].add(cid, quantity=3)
    server["coll"].add(cid, quantity=3, folder="Binder 1")
    evil = f"""<script>
      (async () => {{
        const post = (path, body) => fetch("{server["url"]}" + path, {{ method: "POST", mode: "no-cors",
          headers: {{ "content-type": "text/plain" }}, body }}).catch(() => null);
        for (let i = 0; i < 20; i++) await post("/v1/collection", JSON.stringify({{ card_id: "{cid}", quantity: 25 }}));
        for (let i = 0; i < 5; i++) await post("/v1/collection/undo", "{{}}");
        const form = new FormData(); form.append("x", "y");
        await fetch("{server["url"]}/v1/collection/undo", {{ method: "POST", mode: "no-cors", body: form }}).catch(() => null);
        document.title = "done";
      }})();
    </script>"""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Evil(BaseHTTPRequestHandler):  # another origin on this machine: another port
        def do_GET(self):
            body = evil.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    other = ThreadingHTTPServer(("127.0.0.1", free_port()), Evil)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with sync_api.sync_playwright() as p:
            b = _browser(p)
            page = b.new_page()
            page.goto(f"http://localhost:{other.server_address[1]}/")
            page.wait_for_function("document.title === 'done'", timeout=30_000)
            b.close()
    finally:
        other.shutdown()
    assert server["coll"].count() == 6 and len(server["coll"].rows()) == 2
    import httpx

    # every one of the 26 reached the server and was refused there (not stopped by the browser)
    metrics = httpx.get(server["url"] + "/metrics").text
    assert 'cardid_requests_total{route="refused",status="403"} 26' in metrics


def test_cards_still_to_review_survive_a_reload(server, tmp_path):
    """Two photos reviewed halfway, then the page reloaded (or the tab closed): it asks first,
    and the cards still pending come back, each still addable with its crop."""
    cid, cat = server["cid"], server["cat"]
    paths = []
    for i in range(2):  # two photos of the card (the same photo twice would be one repeat)
        paths.append(tmp_path / f"photo{i}.png")
        cv2.imwrite(str(paths[-1]), _photo(cat.load_image(cid), w=640 + 160 * i)[..., ::-1])
    with sync_api.sync_playwright() as p:
        b = _browser(p)
        page = b.new_page()
        asked = []
        page.on("dialog", lambda d: (asked.append(d.type), d.accept()))
        page.goto(server["url"] + "/")
        page.set_input_files("#file", [str(x) for x in paths])
        page.wait_for_function("document.querySelectorAll('.item.pending').length === 2", timeout=30_000)
        page.locator("h1").click()
        page.reload()
        page.wait_for_function("document.querySelectorAll('.item.pending').length === 2", timeout=30_000)
        assert "kept from your last visit" in page.inner_text("#status")
        page.locator("h1").click()
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelectorAll('.item.pending').length === 1")
        page.wait_for_function(f"document.querySelector('#rows').innerText.includes('{cid}')")
        b.close()
    assert asked == ["beforeunload"]
    assert server["coll"].count() == 1 and server["labelled"].count() == 1


def test_a_crafted_collection_file_shows_its_values_as_text(server):
    """A row whose quantity is text in the SQLite file (SQLite takes it) reaches the page as text."""
    import sqlite3

    cid = server["cid"]
    server["coll"].add(cid)
    con = sqlite3.connect(server["coll"].path)
    payload = '1"><img src=x onerror="document.title=\'pwned\'">'
    con.execute("UPDATE cards SET quantity = ?, folder = ?", (payload, "<b>bold</b>"))
    con.commit()
    con.close()
    with sync_api.sync_playwright() as p:
        b = _browser(p)
        page = b.new_page()
        page.goto(server["url"] + "/")
        page.wait_for_function(f"document.querySelector('#rows').innerText.includes('{cid}')")
        page.wait_for_timeout(300)
        assert page.title() != "pwned" and page.locator("#rows img, #rows b").count() == 0
        assert page.locator('#rows input[data-f="folder"]').input_value() == "<b>bold</b>"  # as text
        b.close()


def test_the_same_photo_twice_is_a_repeat_and_a_back_is_counted_not_queued(server, tmp_path):
    """The real server says the second upload of a photo (saved again as JPEG) is a repeat: the page
    queues its card once and says so; a card's back in an answer is counted, never queued."""
    cid, cat = server["cid"], server["cat"]
    png, jpeg = tmp_path / "front.png", tmp_path / "front-again.jpg"
    photo = _photo(cat.load_image(cid))[..., ::-1]
    cv2.imwrite(str(png), photo)
    cv2.imwrite(str(jpeg), photo, [cv2.IMWRITE_JPEG_QUALITY, 80])
    with sync_api.sync_playwright() as p:
        b = _browser(p)
        page = b.new_page()
        page.goto(server["url"] + "/")
        page.set_input_files("#file", str(png))
        page.wait_for_selector(".item.match.current", timeout=30_000)
        page.set_input_files("#file", str(jpeg))
        page.wait_for_function("document.querySelector('#status').innerText.includes('not added again')")
        assert "the same photo as front.png" in page.inner_text("#status")
        assert page.locator(".item").count() == 1  # one card, one entry
        # an answer with the card and a back beside it (stood in: the tiny model knows no back)
        back = {"decision": "back", "card": None, "ambiguous_between": [], "score": 0.9, "top": [],
                "corners": [[400, 80], [600, 80], [600, 360], [400, 360]]}  # fmt: skip
        card = {"decision": "match", "card": _card(cat, cid), "ambiguous_between": [], "score": 2.0,
                "top": [_card(cat, cid)], "corners": [[40, 80], [240, 80], [240, 360], [40, 360]]}  # fmt: skip
        page.route("**/v1/recognize*", lambda r: r.fulfill(json=_answer([card, back])))
        other = tmp_path / "listing.png"
        cv2.imwrite(str(other), np.full((480, 640, 3), 90, np.uint8))
        page.set_input_files("#file", str(other))
        page.wait_for_function("document.querySelector('#status').innerText.includes('card back')")
        assert "1 card and 1 card back in listing.png" in page.inner_text("#status")
        assert page.locator(".item").count() == 2 and page.locator(".item.back").count() == 0
        b.close()
    assert server["coll"].count() == 0  # nothing was added by any of it
