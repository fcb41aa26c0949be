"""Measure each course notebook: wall time of a full execution and the kernel's peak memory.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/measure_notebooks.py [--out /tmp/nb-measure] [NAME ...]

Each notebook is executed, one at a time, by `jupyter nbconvert --to notebook --execute`
into a temporary folder (the committed notebooks are never overwritten). While it runs, the
kernel process (the ipykernel child of nbconvert) is polled for VmHWM in /proc: the kernel's
own peak resident memory, which the kernel keeps until it exits, so polling misses at most
the last poll interval. Prints a Markdown table (the one in docs/teaching-guide.md) and
writes measurements.json next to the executed notebooks.

The numbers are what this machine gives; on a shared or slower CPU, times grow and memory
stays about the same.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dalle_core.memory import peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def is_kernel(pid: int) -> bool:
    try:
        return b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def measure(notebook: Path, out: Path, timeout: int, poll: float) -> dict:
    command = [
        sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
        f"--ExecutePreprocessor.timeout={timeout}", "--output-dir", str(out), str(notebook),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=NOTEBOOKS)
    kernel_peak = 0
    converter_peak = 0
    while process.poll() is None:
        converter_peak = max(converter_peak, peak_rss_mib(process.pid) or 0)
        for pid in descendants(process.pid):
            if is_kernel(pid):
                kernel_peak = max(kernel_peak, peak_rss_mib(pid) or 0)
        time.sleep(poll)
    seconds = time.perf_counter() - start
    log = process.stdout.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{notebook.name} failed:\n{log[-3000:]}")
    return {
        "notebook": str(notebook.relative_to(NOTEBOOKS)),
        "seconds": round(seconds, 1),
        "kernel_peak_mib": round(kernel_peak),
        "nbconvert_peak_mib": round(converter_peak),
    }


def table(rows: list[dict]) -> str:
    lines = ["| notebook | execution time (s) | kernel peak memory (MiB) |", "|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['notebook']} | {r['seconds']:.0f} | {r['kernel_peak_mib']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook names under notebooks/ (default: every main notebook)")
    parser.add_argument("--out", default=None, help="folder for the executed copies (default: a new temporary folder)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between memory polls")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="nb-measure-"))
    if out.resolve() == NOTEBOOKS.resolve() or NOTEBOOKS.resolve() in out.resolve().parents:
        parser.error("--out must not be inside notebooks/: the committed notebooks are never overwritten")
    out.mkdir(parents=True, exist_ok=True)
    names = args.names or [p.name for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))]
    rows = []
    for name in names:
        row = measure(NOTEBOOKS / name, out, args.timeout, args.poll)
        rows.append(row)
        print(f"{row['notebook']}: {row['seconds']} s, kernel peak {row['kernel_peak_mib']} MiB", flush=True)
    info = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "rows": rows,
    }
    (out / "measurements.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    print(table(rows))
    print(f"executed copies and measurements.json in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
