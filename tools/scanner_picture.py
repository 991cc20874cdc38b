"""The README's picture of the scanner: `cardid serve` on the demo's bundle (synthetic cards only:
nothing of ../shared/realdata is shown), one of the demo's simulated table photos uploaded in
Debian's chromium, a matched card added with Enter (else a candidate picked), the page photographed.

    make demo && .venv/bin/python tools/scanner_picture.py [--bundle runs/demo/bundle/demo] [--out docs/scanner.jpg]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=ROOT / "runs" / "demo" / "bundle" / "demo")
    ap.add_argument("--photo", type=Path, default=ROOT / "runs" / "demo" / "photos" / "photo_0.jpg")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "scanner.jpg")
    args = ap.parse_args()
    if not args.bundle.is_dir() or not args.photo.is_file():
        sys.exit(f"no demo bundle or photo ({args.bundle}, {args.photo}): run `make demo` first")

    from playwright.sync_api import sync_playwright

    from cardid.serve import free_port

    work = Path(tempfile.mkdtemp(prefix="cardid-picture-"))
    port = free_port()
    cmd = [sys.executable, "-m", "cardid.cli", "serve", str(args.bundle), "--port", str(port)]
    srv = subprocess.Popen([*cmd, "--collection", str(work / "collection.sqlite")], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = b.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/")
            page.fill("#folder", "Binder 1")
            page.set_input_files("#file", str(args.photo))
            page.wait_for_selector(".item.current", timeout=60_000)
            matches = page.locator(".item.match")
            if matches.count():  # a clear match: Enter adds it
                matches.first.click()
                page.locator("h1").click()
                page.keyboard.press("Enter")
            else:  # else its first candidate
                page.locator("h1").click()
                page.keyboard.press("1")
            page.wait_for_function("document.querySelectorAll('#rows tr').length > 0")
            page.wait_for_timeout(500)  # thumbnails
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), type="jpeg", quality=80, full_page=True)
            b.close()
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
