import io
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from cardid.catalog import CardRecord, Catalog
from cardid.catalog.download import FAILURES_FILE, download_images


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((30, 20, 3), color, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class Server:
    """A local HTTP server: /ok/<n>.png, /flaky/<n>.png (503 twice), /missing.png (404), /text.png."""

    def __init__(self):
        self.hits: Counter = Counter()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.hits[self.path] += 1
                if self.path.startswith("/flaky") and srv.hits[self.path] <= 2:
                    return self.send_error(503)
                if self.path.startswith(("/ok", "/flaky")):
                    body, ctype = png(len(self.path)), "image/png"
                elif self.path == "/text.png":
                    body, ctype = b"<html>rate limited</html>", "text/html"
                else:
                    return self.send_error(404)
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


def catalog(tmp_path, server, paths):
    recs = [
        CardRecord(
            id=f"s-{i}", name="x", set_id="s", image_url=server.url + p, image_file=f"images/s-{i}.png"
        )
        for i, p in enumerate(paths)
    ]
    cat = Catalog(tmp_path, recs)
    cat.save()
    return cat


def test_downloads_retries_and_reports_failures(tmp_path, server):
    cat = catalog(tmp_path, server, ["/ok/1.png", "/ok/2.png", "/flaky/3.png", "/missing.png", "/text.png"])
    rep = download_images(cat, workers=3, retries=3, backoff=0.01)
    assert rep.downloaded == ["s-0", "s-1", "s-2"]
    assert [f["id"] for f in rep.failed] == ["s-3", "s-4"]
    assert "404" in rep.failed[0]["error"] and "not an image" in rep.failed[1]["error"]
    assert server.hits["/flaky/3.png"] == 3  # two 503s, then success
    assert server.hits["/missing.png"] == 1  # a 404 is not retried
    assert (tmp_path / FAILURES_FILE).exists()
    assert cat.load_image("s-2").shape == (30, 20, 3)
    assert not (tmp_path / "images" / "s-3.png").exists()
    assert not [p for p in (tmp_path / "images").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_resume_skips_complete_files_and_replaces_corrupt_ones(tmp_path, server):
    cat = catalog(tmp_path, server, ["/ok/1.png", "/ok/2.png"])
    assert download_images(cat, backoff=0.01).ok
    (tmp_path / "images" / "s-1.png").write_bytes(b"\x89PNG truncated")
    rep = download_images(cat, backoff=0.01)
    assert rep.skipped == ["s-0"] and rep.downloaded == ["s-1"]
    assert server.hits["/ok/1.png"] == 1 and server.hits["/ok/2.png"] == 2
    assert not (tmp_path / FAILURES_FILE).exists()


def test_unreachable_host_is_a_reported_failure(tmp_path):
    recs = [
        CardRecord(
            id="s-1",
            name="x",
            set_id="s",
            image_url="http://127.0.0.1:9/none.png",
            image_file="images/s-1.png",
        )
    ]
    rep = download_images(Catalog(tmp_path, recs), retries=1, backoff=0.01, timeout=2)
    assert not rep.ok and rep.failed[0]["id"] == "s-1"
