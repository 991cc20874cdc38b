"""How fast the scanner page stays with a large collection: 5,000 rows kept, the page loaded in
Debian's chromium (playwright), then the time of each UI update a collector makes — filtering the
table, a row edited, a card added from the review queue — measured in the page
(``performance.now()`` around the update and the next frame).

    .venv/bin/python benchmarks/scanner_ui.py [--rows 5000] [--json benchmarks/results/scanner_ui.json]

Goal: every update ≤ 100 ms. Writes JSON and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.conftest: the tiny model and DB the tests build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "scanner_ui.json")
    args = ap.parse_args()

    import uvicorn
    from playwright.sync_api import sync_playwright
    from tests.conftest import build_index

    from cardid.collection import Collection
    from cardid.recognize import Recognizer
    from cardid.serve import create_app, free_port
    from cardid.synth.cards import synth_cards

    work = Path(tempfile.mkdtemp(prefix="cardid-ui-"))
    cat = synth_cards(work / "cat", n=40, seed=0, height=160)
    model, db = build_index(work, cat.root, "--calibrate-cards", "6")
    coll = Collection(work / "c.sqlite")
    conds = ("NM", "LP", "MP", "HP", "DMG")
    coll.add_many(
        [
            {"card_id": cat.ids[i % len(cat)], "condition": conds[i % 5], "folder": f"Binder {i // 360}"}
            for i in range(args.rows)
        ],
        merge=False,
    )
    app = create_app(Recognizer.open(model, db), cat, collection=coll)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    timings: dict[str, list[float]] = {
        "load rows": [],
        "filter": [],
        "edit a row": [],
        "add from the queue": [],
    }
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = b.new_page()
        t0 = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function(
            f"document.querySelector('#count').innerText.includes('{args.rows} cards')", timeout=60_000
        )
        timings["load rows"].append((time.perf_counter() - t0) * 1000)
        measure = """async ([what, arg]) => {
          const t = performance.now();
          if (what === 'filter') { const f = document.querySelector('#filter'); f.value = arg; f.dispatchEvent(new Event('input')); }
          if (what === 'edit') { const s = document.querySelector('#rows tr select[data-f=condition]'); s.value = arg;
                                 s.dispatchEvent(new Event('change', {bubbles: true}));
                                 await new Promise(r => { const o = new MutationObserver(() => { o.disconnect(); r(); });
                                   o.observe(document.querySelector('#status'), {childList: true, subtree: true, characterData: true}); }); }
          if (what === 'add') { enqueue({decision: 'match', card: {card_id: arg, name: arg}, top: []}, 'bench', null, 0);
                                await confirm(); }
          await new Promise(r => requestAnimationFrame(() => r()));
          return performance.now() - t; }"""
        for q in ("binder 3", "lp", cat.ids[3], ""):
            timings["filter"].append(page.evaluate(measure, ["filter", q]))
        for c in ("HP", "NM", "MP"):
            timings["edit a row"].append(page.evaluate(measure, ["edit", c]))
        for i in range(5):
            timings["add from the queue"].append(page.evaluate(measure, ["add", cat.ids[i]]))
        b.close()
    srv.should_exit = True
    res = {
        "rows": args.rows,
        "timings_ms": {k: [round(v, 1) for v in vs] for k, vs in timings.items()},
        "max_ms": {k: round(max(vs), 1) for k, vs in timings.items()},
        "goal_ms": 100,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2) + "\n")
    lines = [
        f"# Scanner page with {args.rows:,} rows (chromium, 2 CPU cores)",
        "",
        "| update | max ms | each |",
        "|---|---|---|",
    ]
    lines += [
        f"| {k} | {res['max_ms'][k]} | {', '.join(map(str, v))} |" for k, v in res["timings_ms"].items()
    ]
    args.json.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
