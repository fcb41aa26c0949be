"""Benchmark the explorer in headless Chromium (make bench-explorer); medians of several runs.

    .venv/bin/python explorer/bench.py [--runs 7] [--page build/explorer] [--no-docs]

Measured, with the page served by explorer/serve.py (gzip, as a static host serves it) on 127.0.0.1:
- one 16x16 picture: the time window.dalleExplorer.generate takes, the picture forming row by row
  as a user sees it (256 decoder steps, sampling, 16 VQGAN decodings), and its parts;
- the redraw of the step panel for a scrubbed step (bars, patch, entropy line);
- every byte the page loads: as transferred (gzip-compressed) and raw, per file;
- that the page works offline: every request went to 127.0.0.1 and none failed.
The machine's load average is recorded beside the figures (the machine may be shared).

Writes build/explorer-bench.json and, unless --no-docs, the generated section of docs/explorer.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from serve import make_server  # noqa: E402

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

RESULTS = ROOT / "build" / "explorer-bench.json"
DOC = ROOT / "docs" / "explorer.md"
START, END = "<!-- bench:start (explorer/bench.py writes this section) -->", "<!-- bench:end -->"
PROMPTS = ["a red circle in the top left corner", "one small green star at the bottom right",
           "a large yellow square in the centre on a black background", "a blue cross at the top"]


def take_screenshot(page, path: Path) -> None:
    """The page as the README shows it: a picture, its most uncertain step under the scrubber, a sweep."""
    page.evaluate("""() => window.dalleExplorer.generate({text: 'a red circle in the top left corner', seed: 1,
        supercondition_factor: 4, temperature: 1, top_k: 64})""")
    page.fill("#sweep-factors", "1, 4, 16")
    page.fill("#sweep-temperatures", "0.5, 1, 2")
    page.click("#sweep-run")
    page.wait_for_function("document.getElementById('sweep-status').textContent.startsWith('9 of 9')", timeout=300_000)
    page.evaluate("""() => { const bits = window.dalleExplorer.entropy;
        window.dalleExplorer.showStep(bits.indexOf(Math.max(...bits))); }""")  # the most uncertain step
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def measure(page_dir: Path, runs: int, screenshot: Path | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    server = make_server(page_dir, ROOT / "site")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    outside, failed, errors = [], [], []
    load_before = os.getloadavg()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 1500})

            def only_local(route):
                if route.request.url.startswith(base) or route.request.url.startswith("data:"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", only_local)
            page = context.new_page()
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            started = time.monotonic()
            page.goto(base + "explorer/", wait_until="load")
            page.wait_for_function("document.body.dataset.state === 'done'", timeout=180_000)
            first_picture = time.monotonic() - started
            resources = page.evaluate("""() => [
                {name: location.href, transfer: performance.getEntriesByType('navigation')[0].encodedBodySize,
                 raw: performance.getEntriesByType('navigation')[0].decodedBodySize},
                ...performance.getEntriesByType('resource').map(r =>
                    ({name: r.name, transfer: r.encodedBodySize, raw: r.decodedBodySize}))]""")
            pictures = []
            for run in range(runs):
                prompt = PROMPTS[run % len(PROMPTS)]
                result = page.evaluate("""prompt => window.dalleExplorer.generate({text: prompt, seed: 7,
                    supercondition_factor: 16, temperature: 1, top_k: 64})""", prompt)
                pictures.append(result["milliseconds"])
            redraws = [page.evaluate(f"window.dalleExplorer.showStep({step})") for step in range(0, 256, 8)]
            if screenshot is not None:
                take_screenshot(page, screenshot)
            chromium_version = browser.version
            context.close()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    load_after = os.getloadavg()

    def median(key: str) -> float:
        return round(statistics.median(p[key] for p in pictures))

    files = {r["name"].replace(base, "/"): {"transfer": r["transfer"], "raw": r["raw"]} for r in resources}
    return {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        "chromium": chromium_version,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "runs": runs,
        "picture_ms": {"median": median("total"), "all": [round(p["total"]) for p in pictures],
                       "decoder_steps": median("steps"), "loop": median("loop"),
                       "final_decode": median("detokenize_final")},
        "step_redraw_ms": {"median": round(statistics.median(redraws), 1), "max": round(max(redraws), 1),
                           "count": len(redraws)},
        "first_picture_after_load_s": round(first_picture, 1),
        "bytes": {"transfer": sum(f["transfer"] for f in files.values()), "raw": sum(f["raw"] for f in files.values()),
                  "files": files},
        "offline": {"requests_outside": outside, "failed_requests": failed, "console_errors": errors},
    }


def markdown(results: dict) -> str:
    mib = 2**20
    picture, redraw, size = results["picture_ms"], results["step_redraw_ms"], results["bytes"]
    rows = "\n".join(
        f"| `{name}` | {f['transfer'] / 1024:,.0f} KiB | {f['raw'] / 1024:,.0f} KiB |"
        for name, f in sorted(size["files"].items(), key=lambda item: -item[1]["raw"])
    )
    offline = results["offline"]
    works = not (offline["requests_outside"] or offline["failed_requests"] or offline["console_errors"])
    picture_row = (f"| one 16x16 picture, forming row by row | **{picture['median'] / 1000:.2f} s** "
                   f"(256 decoder steps {picture['decoder_steps'] / 1000:.2f} s) | at most 2 s |")
    redraw_row = (f"| redraw of the step panel for a scrubbed step | **{redraw['median']} ms** "
                  f"(slowest of {redraw['count']}: {redraw['max']} ms) | at most 50 ms |")
    size_row = (f"| everything the page loads, gzip-compressed as served | **{size['transfer'] / 1e6:.2f} MB** "
                f"({size['raw'] / 1e6:.2f} MB raw; {size['transfer'] / mib:.2f} / {size['raw'] / mib:.2f} MiB) "
                "| at most 8 MB |")
    offline_row = (f"| offline: requests outside 127.0.0.1, failed requests, console errors | "
                   f"{'none' if works else offline} | none |")
    return f"""{START}
Measured by `make bench-explorer` on {results['when']}: {results['machine']}, headless Chromium
{results['chromium']}, one wasm thread; load average {results['load_average_before_after'][0]} before and
{results['load_average_before_after'][1]} after (the machine is shared: read the figures as upper bounds).

| target | measured (median of {results['runs']}) | goal |
|---|---|---|
{picture_row}
{redraw_row}
{size_row}
{offline_row}

Single runs: {', '.join(f'{ms / 1000:.2f}' for ms in picture['all'])} s. The first picture appeared
{results['first_picture_after_load_s']} s after the page was opened (download, compiling the wasm, loading
the graphs, then 256 steps).

| file | transferred (gzip) | raw |
|---|---|---|
{rows}
{END}"""


def write_doc(results: dict) -> None:
    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{DOC} lacks the markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + markdown(results) + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--page", type=Path, default=ROOT / "build" / "explorer")
    parser.add_argument("--no-docs", action="store_true", help="only print and write build/explorer-bench.json")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "images" / "explorer.png",
                        help="where the README's picture of the page goes (--no-docs: none)")
    args = parser.parse_args(argv)
    if not (args.page / "index.html").is_file():
        print(f"error: no built page in {args.page}: run explorer/build.py (make explorer) first", file=sys.stderr)
        return 1
    results = measure(args.page, args.runs, None if args.no_docs else args.screenshot)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    if not args.no_docs:
        write_doc(results)
        print(f"wrote {DOC} (its measured section) and {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
