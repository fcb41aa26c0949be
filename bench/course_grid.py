"""How long the course model takes to draw one 3x3 grid on the CPU (the figure docs/course-model.md quotes).

    .venv/bin/python bench/course_grid.py              # 2 threads, 5 timed calls after a warm-up
    .venv/bin/python bench/course_grid.py --threads 1

Each call is `MinDalle().generate_images(prompt, seed, grid_size=3)` at the course's
defaults (s = 16, T = 1, top-k 64): 256 decoder steps over 18 rows, then the VQGAN.
Prints the median and the spread; the figure is quoted in docs/course-model.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--grid-size", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from dalle_core import MinDalle

    model = MinDalle(is_verbose=False)
    prompt = "a red star in the top left corner"
    settings = dict(grid_size=args.grid_size, top_k=64, supercondition_factor=16, temperature=1.0)
    model.generate_images(prompt, seed=1, **settings)  # warm-up: allocations, first-call work
    times = []
    for call in range(args.calls):
        started = time.perf_counter()
        model.generate_images(prompt, seed=2 + call, **settings)
        times.append(time.perf_counter() - started)
    grid = f"{args.grid_size}x{args.grid_size}"
    print(f"course model, {grid} grid, {args.threads} thread(s), torch {torch.__version__}: "
          f"median {statistics.median(times):.2f} s over {args.calls} calls "
          f"(min {min(times):.2f}, max {max(times):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
