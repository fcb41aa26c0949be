"""Measure each course notebook (wall time of a full execution, the kernel's peak memory) and keep the
numbers in one place, docs/data/notebook-measurements.json, from which the docs quote them.

    .venv/bin/python scripts/measure_notebooks.py [NAME ...] [--record] [--server] [--baseline]
    .venv/bin/python scripts/measure_notebooks.py --render     # rewrite the docs' blocks from the file
    .venv/bin/python scripts/measure_notebooks.py --check      # exit 1 when a doc's block is stale

Each notebook is executed, one at a time, by `jupyter nbconvert --to notebook --execute` into a
temporary folder (the committed notebooks are never overwritten), with one math-library thread
(OMP_NUM_THREADS=1; the notebooks' start() sets one torch thread). While it runs, the kernel process
(the ipykernel child of nbconvert) is polled for VmHWM in /proc: the kernel's own peak resident
memory, which the kernel keeps until it exits, so polling misses at most the last poll interval.
Each row records the date, the machine and the load average when it started: on a shared or busy
CPU, times grow (memory hardly moves), so a row measured under load says so.

- `--record` merges the measured rows into the data file (rows not measured keep their numbers)
  and rewrites the docs' blocks; without it, the numbers are only printed.
- `--server` also measures JupyterLab's server after it starts (VmRSS and VmHWM), and
  `--baseline` an empty notebook and one that only imports torch, matplotlib and dalle_core.
- The docs quote the file between `<!-- notebook-measurements:NAME -->` and
  `<!-- /notebook-measurements -->` markers (NAME: `table`, `summary`, or `range`, the syllabus's
  one sentence on how long a notebook computes); tests/test_docs_truth.py
  fails when a block differs from what `--render` writes.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "docs" / "data" / "notebook-measurements.json"
COMMAND = ".venv/bin/python scripts/measure_notebooks.py --render"
# the pages that quote the measurements, and which blocks each holds
PAGES = ["README.md", "docs/teaching-guide.md", "docs/classroom.md", "docs/faq.md", "docs/syllabus.md"]
BLOCK = re.compile(r"(<!-- notebook-measurements:(\w+) -->\n)(.*?)(<!-- /notebook-measurements -->)", re.DOTALL)
GUIDE = "docs/teaching-guide.md"
TABLE_ANCHOR = "#time-and-memory-per-notebook-measured"  # the heading above the table in GUIDE


# ---- measuring ----------------------------------------------------------------------------------
def peak_rss_mib(pid: int, field: str = "VmHWM") -> float | None:
    """A process's VmHWM (peak) or VmRSS (now) in MiB, None when /proc has no answer."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(errors="replace").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
        except OSError:
            children = []
        found += children
        todo += children
    return found


def is_kernel(pid: int) -> bool:
    try:
        return b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@functools.cache
def machine() -> str:
    """What the times depend on: CPU, cores, memory, Python and torch."""
    memory = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0) if Path("/proc/meminfo").exists() else 0
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} cores, {memory // 2**20} GiB RAM, "
            f"Python {platform.python_version().rsplit('.', 1)[0]}, torch {torch.__version__}")


def single_thread_env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")


def measure(notebook: Path, out: Path, timeout: int, poll: float) -> dict:
    """Execute one notebook; its seconds, the kernel's peak MiB, and the conditions."""
    command = [
        sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
        f"--ExecutePreprocessor.timeout={timeout}", "--output-dir", str(out), str(notebook),
    ]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=single_thread_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               cwd=notebook.parent)
    kernel_peak = 0.0
    while process.poll() is None:
        for pid in descendants(process.pid):
            if is_kernel(pid):
                kernel_peak = max(kernel_peak, peak_rss_mib(pid) or 0)
        time.sleep(poll)
    seconds = time.perf_counter() - start
    log = process.stdout.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{notebook.name} failed:\n{log[-3000:]}")
    return {"seconds": round(seconds, 1), "kernel_peak_mib": round(kernel_peak),
            "date": datetime.date.today().isoformat(), "load_average": round(load, 2), "machine": machine()}


def measure_baseline(out: Path, timeout: int, poll: float) -> dict:
    """An empty notebook (nbconvert and a kernel starting) and one that only imports the course's libraries."""
    folder = Path(tempfile.mkdtemp(prefix="nb-baseline-"))
    empty = folder / "empty.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")]), empty)
    imports = folder / "imports.ipynb"
    source = "\n".join(["import torch", "import matplotlib.pyplot as plt", "import dalle_core",
                        "from dalle_core.lab.notebook import start"])
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), imports)
    first, second = measure(empty, out, timeout, poll), measure(imports, out, timeout, poll)
    return {"empty_seconds": first["seconds"], "imports_seconds": second["seconds"],
            "imports_kernel_peak_mib": second["kernel_peak_mib"], "date": second["date"],
            "load_average": first["load_average"], "machine": second["machine"]}


def measure_server(timeout: float = 120) -> dict:
    """JupyterLab's server (no kernel) once it serves: resident and peak MiB."""
    home = Path(tempfile.mkdtemp(prefix="lab-measure-"))
    env = dict(single_thread_env(), JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_TOKEN=secrets.token_hex(16))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
               f"--ServerApp.root_dir={NOTEBOOKS}", "--LabApp.news_url=", "--allow-root"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=NOTEBOOKS, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not (home / "runtime" / f"jpserver-{process.pid}.json").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("jupyter lab did not start")
            time.sleep(0.5)
        time.sleep(3)  # settle: extensions load right after the server writes its file
        return {"server_rss_mib": round(peak_rss_mib(process.pid, "VmRSS") or 0),
                "server_peak_mib": round(peak_rss_mib(process.pid) or 0), "date": datetime.date.today().isoformat()}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- the data file ------------------------------------------------------------------------------
def load(path: Path = DATA) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("notebooks", "server", "baseline"):
        if key not in data:
            raise ValueError(f"{path} has no {key!r}")
    return data


def save(data: dict, path: Path = DATA) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)


def lecture_rows(data: dict) -> dict[str, dict]:
    """The lecture notebooks' rows (name without .ipynb -> row), in course order."""
    return {name: row for name, row in sorted(data["notebooks"].items()) if "/" not in name}


def kernel_range_gib(data: dict) -> tuple[float, float]:
    peaks = [row["kernel_peak_mib"] for row in lecture_rows(data).values()]
    return min(peaks) / 1024, max(peaks) / 1024


def highest(data: dict) -> str:
    rows = lecture_rows(data)
    return max(rows, key=lambda name: rows[name]["kernel_peak_mib"])


def total_seconds(data: dict) -> float:
    return sum(row["seconds"] for row in lecture_rows(data).values())


# ---- the docs' blocks ---------------------------------------------------------------------------
def render_table(data: dict) -> str:
    rows = lecture_rows(data)
    machines = list(dict.fromkeys(row["machine"] for row in rows.values()))
    lines = ["| notebook | execution time (s) | kernel peak memory (MiB) | measured | load average |",
             "|---|---:|---:|---|---:|"]
    for name, row in rows.items():
        load = f"{row['load_average']:.1f}" if row.get("load_average") is not None else row.get("conditions", "?")
        mark = f" ({chr(97 + machines.index(row['machine']))})" if len(machines) > 1 else ""
        lines.append(f"| {name} | {row['seconds']:.0f} | {row['kernel_peak_mib']} | {row['date']}{mark} | {load} |")
    solutions = data.get("solutions")
    if solutions:
        lines.append(f"| solutions/00 … 08 | {solutions['min_seconds']:.0f} – {solutions['max_seconds']:.0f} "
                     f"| not measured | {solutions['date']} | |")
    total = total_seconds(data)
    low, high = kernel_range_gib(data)
    baseline, server = data["baseline"], data["server"]
    named = [f"({chr(97 + i)}) {m}" for i, m in enumerate(machines)] if len(machines) > 1 else machines
    lines += [
        "",
        f"Machine: {'; '.join(named)}; one torch thread per notebook. A load average above the machine's "
        "cores means other jobs shared the CPU: that notebook's time is longer than on a quiet machine, "
        "its memory about the same.",
        "",
        f"Together the {len(rows)} notebooks take {total:.0f} s, about {round(total / 60)} minutes, on one "
        f"thread. Every kernel peaks at {low:.2f} – {high:.2f} GiB, highest in {highest(data)}. "
        f"About {baseline['empty_seconds']:.1f} s of each run is starting nbconvert and a kernel (an empty "
        f"notebook), and importing torch, matplotlib and `dalle_core` brings it to "
        f"{baseline['imports_seconds']:.1f} s and a kernel of {baseline['imports_kernel_peak_mib']} MiB. "
        f"The JupyterLab server alone holds {server['server_rss_mib']} MiB after starting."
        + (f" The solutions: {solutions['how']}." if solutions else ""),
    ]
    return "\n".join(lines) + "\n"


def render_summary(data: dict, page: str) -> str:
    low, high = kernel_range_gib(data)
    times = [row["seconds"] for row in lecture_rows(data).values()]
    link = os.path.relpath(ROOT / GUIDE, (ROOT / page).parent) + TABLE_ANCHOR
    return (f"Measured ([{Path(GUIDE).name}]({link})): a notebook's kernel peaks at {low:.2f} – {high:.2f} GiB "
            f"(highest in {highest(data)}), JupyterLab's server holds {data['server']['server_rss_mib']} MiB, "
            f"and a notebook runs top to bottom in {min(times):.0f} – {max(times):.0f} s on one thread.\n")


def render_range(data: dict, page: str) -> str:
    """The syllabus's sentence: computing time is short beside the reading time the Time lines plan."""
    times = [row["seconds"] for row in lecture_rows(data).values()]
    link = os.path.relpath(ROOT / GUIDE, (ROOT / page).parent) + TABLE_ANCHOR
    return (f"Running a notebook top to bottom takes {min(times):.0f} to {max(times):.0f} s of computing on one "
            f"thread ([{Path(GUIDE).name}]({link})), so the reading, not the computer, sets the pace.\n")


def render_page(text: str, data: dict, page: str) -> str:
    def block(match: re.Match) -> str:
        kind = match.group(2)
        if kind == "table":
            body = render_table(data)
        elif kind == "summary":
            body = render_summary(data, page)
        elif kind == "range":
            body = render_range(data, page)
        else:
            raise ValueError(f"{page}: unknown block notebook-measurements:{kind}")
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(block, text)


def stale_pages(data: dict) -> list[str]:
    stale = []
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        if render_page(text, data, page) != text:
            stale.append(page)
    return stale


def render_all(data: dict) -> list[str]:
    changed = []
    for page in PAGES:
        path = ROOT / page
        text = path.read_text(encoding="utf-8")
        new = render_page(text, data, page)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebooks under notebooks/, e.g. 00_overview.ipynb or "
                                                 "solutions/04_sampling.ipynb (default: every lecture notebook)")
    parser.add_argument("--record", action="store_true", help=f"merge the rows into {DATA.relative_to(ROOT)}, "
                                                              "then rewrite the docs' blocks")
    parser.add_argument("--server", action="store_true", help="also measure JupyterLab's server")
    parser.add_argument("--baseline", action="store_true", help="also measure an empty and an import-only notebook")
    parser.add_argument("--render", action="store_true", help="only rewrite the docs' blocks from the data file")
    parser.add_argument("--check", action="store_true", help="only check that the docs' blocks are current")
    parser.add_argument("--out", default=None, help="folder for the executed copies (default: a temporary folder)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between memory polls")
    args = parser.parse_args(argv)
    if args.render or args.check:
        data = load()
        if args.check:
            stale = stale_pages(data)
            for page in stale:
                print(f"{page}: its notebook-measurements blocks are stale; run {COMMAND}", file=sys.stderr)
            return 1 if stale else 0
        print("rewrote " + (", ".join(render_all(data)) or "nothing: every block is current"))
        return 0
    names = args.names or [p.name for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))]
    missing = [name for name in names if not (NOTEBOOKS / name).is_file()]
    if missing:
        parser.error(f"no such notebook under notebooks/: {', '.join(missing)}")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="nb-measure-"))
    if out.resolve() == NOTEBOOKS.resolve() or NOTEBOOKS.resolve() in out.resolve().parents:
        parser.error("--out must not be inside notebooks/: the committed notebooks are never overwritten")
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in names:
        row = measure(NOTEBOOKS / name, out, args.timeout, args.poll)
        rows[name.removesuffix(".ipynb")] = row
        print(f"{name}: {row['seconds']} s, kernel peak {row['kernel_peak_mib']} MiB "
              f"(load average {row['load_average']})", flush=True)
    extra = {}
    if args.baseline:
        extra["baseline"] = measure_baseline(out, args.timeout, args.poll)
        print(f"baseline: {extra['baseline']}", flush=True)
    if args.server:
        extra["server"] = measure_server()
        print(f"server: {extra['server']}", flush=True)
    if args.record:
        data = load() if DATA.exists() else {"notebooks": {}, "server": {}, "baseline": {}}
        data["notebooks"].update(rows)
        data.update(extra)
        save(data)
        print(f"recorded in {DATA.relative_to(ROOT)}; rewrote " + (", ".join(render_all(data)) or "no page"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
