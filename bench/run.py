"""Benchmark: dalle_core against min-dalle 0.4.11 on the same random weights (DALL·E Mini size, or Mega).

Every measurement runs in a fresh subprocess (clean peak memory, no warm caches shared
between the two programs), and the runs interleave ours / min-dalle / floor, so a busy
machine slows both sides alike. Reported: ms per decoded token, seconds per image
(256 tokens + VQGAN), peak RSS, the ratio to min-dalle, and the ratio to the measured
weight-streaming floor (one batched matrix-vector product over every decoder weight:
what a token step must at least read).

    python bench/run.py                 # the tables of docs/performance.md, and docs/images/performance.png
    python bench/run.py --repeats 1 --configs float32:1
    python bench/run.py --report-only   # the tables again, from build/bench-runs.json
    python bench/run.py --model mega --device cuda --repeats 1   # the GPU tables (Mega-size weights)

On CUDA each process times a first call, then `--calls` more (median), and checks that
the same seed gave the same image every time; the GPU table names the device on every row.
bench/gpu_check.py is the short version for a GPU session with little time.

docs/performance.md holds the prose that explains the numbers; this writes only the tables,
each between its `<!-- bench:table NAME -->` and `<!-- /bench:table -->` lines.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dalle_core.__main__ import report_errors
from dalle_core.memory import peak_rss_mib
from dalle_core.weights import atomic_write

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red circle on a green background"
SEED = 7


# ---------------------------------------------------------------- inside a subprocess
def make_weights(models_root: Path, model: str = "mini", device: str = "cpu") -> None:
    """Random checkpoints in min-dalle's layout, float16 as the published ones; Mega's are
    built on the GPU when one runs the benchmark."""
    import torch

    from dalle_core.lab.random_weights import write_random_model

    write_random_model(models_root, model, torch.float16, device)


def timed_generations(model, grid_size: int, calls: int, sync) -> tuple[list[float], list[float]]:
    """A first generation, then `calls` more of the same prompt and seed: the seconds of each
    and the pixel sum of each (equal sums: the same image every time)."""
    times, sums = [], []
    for _ in range(1 + calls):
        sync()
        start = time.perf_counter()
        images_out = model.generate_images(PROMPT, SEED, grid_size=grid_size)
        sync()
        times.append(time.perf_counter() - start)
        sums.append(float(images_out.double().sum()))
    return times, sums


def timed_detokenize(detokenize, images: int, device: str, sync) -> float:
    """Seconds the VQGAN alone takes for `images` pictures (all-zero tokens)."""
    import torch

    with torch.inference_mode():
        tokens = torch.zeros(images, 256, dtype=torch.long, device=device)
        sync()
        start = time.perf_counter()
        detokenize(tokens)
        sync()
        return time.perf_counter() - start


def run_one(kind: str, models_root: str, dtype_name: str, images: int, threads: int, device: str = "cpu",
            model_name: str = "mini", calls: int = 0, check_static: bool = False) -> dict:
    """One program in this process: a first generation, then `calls` more (timed, median)."""
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    grid_size = int(images**0.5)
    is_mega = model_name == "mega"
    if kind == "floor":
        return run_floor(dtype, images, device, model_name)
    if kind == "ours":
        from dalle_core.pipeline import MinDalle

        model = MinDalle(models_root, dtype=dtype, device=device, is_mega=is_mega, is_verbose=False)
        detokenize = lambda tokens: model.detokenizer(False, tokens)  # noqa: E731
    else:
        import min_dalle.min_dalle as reference

        reference.requests.get = lambda *a, **k: None  # no network: the files are present
        torch.set_num_threads(threads)  # min-dalle sets its own at import
        model = reference.MinDalle(models_root, dtype=dtype, device=device, is_mega=is_mega, is_verbose=False)
        detokenize = lambda tokens: model.detokenizer.forward(False, tokens)  # noqa: E731
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, sums = timed_generations(model, grid_size, calls, sync)
    total = statistics.median(times[1:]) if calls else times[0]
    vqgan = timed_detokenize(detokenize, images, device, sync)
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    result = {"seconds": total, "first_seconds": times[0], "ms_per_token": 1000 * (total - vqgan) / 256,
              "vqgan_seconds": vqgan, "peak_mib": peak_gpu or peak_rss_mib(), "image_sum": sums[0],
              "repeats_same": float(len(set(sums)) == 1)}
    if device == "cuda":
        result["device_name"] = torch.cuda.get_device_name()
    if kind == "ours" and check_static:  # the graph's tokens against the same step run without one
        graph_tokens = model.generate_image_tokens(PROMPT, SEED, grid_size)
        model.decode_path = "static"
        result["graph_equals_static"] = float(
            torch.equal(graph_tokens, model.generate_image_tokens(PROMPT, SEED, grid_size))
        )
        model.decode_path = None
    return result


def run_floor(dtype, images: int, device: str = "cpu", model_name: str = "mini") -> dict:
    """One product of a (2n, in) batch with every decoder weight, as a step must read them.

    On CUDA the products are replayed from a CUDA graph (launching ~300 small kernels would
    measure launches, not reading), and a device-to-device copy measures the bandwidth.
    """
    import torch

    from dalle_core import DalleBartDecoder, DalleConfig

    with torch.device("meta"):
        decoder = DalleBartDecoder(DalleConfig.from_name(model_name))
    weights = [
        torch.randn(p.shape, dtype=dtype, device=device) * 0.01
        for n, p in decoder.named_parameters()
        if p.dim() == 2 and not n.startswith("embed")
    ]
    byte_count = sum(w.numel() * w.element_size() for w in weights)
    x = {w.shape[1]: torch.randn(2 * images, w.shape[1], dtype=dtype, device=device) for w in weights}

    def step() -> None:
        for w in weights:
            torch.nn.functional.linear(x[w.shape[1]], w)

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    result = {"gigabytes": byte_count / 1e9}
    if device == "cuda":
        step()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        step = graph.replay
        source = torch.empty(byte_count // 2, dtype=torch.uint8, device=device)
        target = torch.empty_like(source)
        copies = []
        for _ in range(6):
            sync()
            start = time.perf_counter()
            target.copy_(source)
            sync()
            copies.append(time.perf_counter() - start)
        result["copy_gb_per_s"] = 2 * source.numel() / statistics.median(copies[1:]) / 1e9  # read + write
        del source, target
    times = []
    for _ in range(6):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    result["ms_per_token"] = 1000 * statistics.median(times[1:])
    result["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else peak_rss_mib()
    return result


# ---------------------------------------------------------------- the driver
def measure(kind: str, root: Path, dtype: str, images: int, threads: int, device: str, model: str = "mini",
            calls: int = 0, check_static: bool = False) -> dict:
    """One program's numbers, measured in a fresh process (`--one`); {"error": its last line} if it fails."""
    command = [sys.executable, __file__, "--one", kind, "--models-root", str(root), "--dtype", dtype,
               "--images", str(images), "--threads", str(threads), "--device", device, "--model", model,
               "--calls", str(calls)] + (["--check-static"] if check_static else [])
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last}
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"]}

    def middle(values: list):  # numbers: the median; text (the device's name): the first
        return statistics.median(values) if all(isinstance(v, (int, float)) for v in values) else values[0]

    return {key: middle([r[key] for r in ok if key in r]) for key in ok[0]} | {"n": len(ok)}


def summarize_all(runs: dict) -> dict:
    return {
        key: {p: summarize(r) for p, r in entry.items()} | {"paired": paired_ratios(entry)}
        for key, entry in runs.items()
    }


def predicted_vs_floor(dtype: str, images: int, device: str) -> float:
    """Bytes a whole generation reads (weights, cache, cross-attention keys/values), counted
    by dalle_core.lab.cost, over the bytes the floor reads: every decoder weight matrix, the
    cross-attention's k_proj and v_proj included, which dalle_core's step does not read."""
    import torch

    from dalle_core import DalleConfig
    from dalle_core.lab.cost import generation_cost
    from dalle_core.pipeline import default_attention_dtype

    weights_dtype = getattr(torch, dtype)
    cache_dtype = default_attention_dtype(weights_dtype, torch.device(device))
    config = DalleConfig.mini()
    cost = generation_cost(config, images, dtype=weights_dtype, attention_state_dtype=cache_dtype)
    floor = generation_cost(config, images, dtype=weights_dtype, cross_attention_cached=False)
    return cost.total_bytes / floor.weight_bytes


def paired_ratios(entry: dict) -> dict:
    """Ratios within each repeat (runs next to each other in time), then their median: a
    machine whose load changes between repeats moves both sides of a ratio together."""
    ratios: dict = {}
    for name, program, field in (("vs_min_dalle", "min-dalle", "seconds"), ("vs_floor", "floor", "ms_per_token")):
        values = [
            ours[field] / other[field]
            for ours, other in zip(entry["dalle_core"], entry[program])
            if "error" not in ours and "error" not in other
        ]
        if values:
            ratios[name] = statistics.median(values)
    return ratios


# ---------------------------------------------------------------- the report: tables only
# docs/performance.md holds the prose; this writes each table between its two markers
TABLE_START, TABLE_END = "<!-- bench:table {} -->", "<!-- /bench:table -->"
CPU_HEADER = ["device", "dtype", "images", "program", "ms / token", "s / image", "VQGAN s", "peak MiB",
              "time vs min-dalle", "vs floor", "bytes vs floor (counted)", "same image"]
GPU_HEADER = ["device", "model", "dtype", "images", "program", "first call s", "later s", "ms / token", "VQGAN s",
              "peak MiB", "time vs min-dalle", "vs floor", "same seed, same image", "same image as min-dalle",
              "graph = static step"]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table; a short row is filled with empty cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row + [""] * (len(header) - len(row))) + " |" for row in rows]


def write_tables(path: Path, tables: dict[str, list[str]]) -> None:
    """Replace what lies between each named table's markers in `path`; everything else stays as
    it is. The document decides where each table goes: a table without its markers is an error."""
    text = path.read_text(encoding="utf-8")
    for name, lines in tables.items():
        start = TABLE_START.format(name)
        if text.count(start) != 1 or TABLE_END not in text.split(start, 1)[1]:
            raise ValueError(f"{path} needs one {start} ... {TABLE_END} pair, where the {name} table goes")
        before, rest = text.split(start, 1)
        text = "\n".join([before + start, *lines, TABLE_END + rest.split(TABLE_END, 1)[1]])
    with atomic_write(path) as partial:
        partial.write_text(text, encoding="utf-8")


def yes_no(condition: bool | None) -> str:
    return "" if condition is None else ("yes" if condition else "no")


def same_image(ours: dict, other: dict) -> bool | None:
    return ours["image_sum"] == other["image_sum"] if "image_sum" in other else None


def cpu_tables(results: dict, meta: dict) -> dict[str, list[str]]:
    """The CPU comparison, the peak memory of both programs, and the bytes the floor reads."""
    rows, peaks, floor_bytes = [], [], {}
    for config, entry in results.items():
        dtype, images, device = config.split(":")
        ours, ref, paired, floor = entry["dalle_core"], entry["min-dalle"], entry["paired"], entry["floor"]
        for program, r in (("dalle_core", ours), ("min-dalle", ref)):
            if "error" in r:
                rows.append([device, dtype, images, program, f"fails: {r['error'][:80]}"])
                continue
            is_ours = program == "dalle_core"
            ratio = f"{paired['vs_min_dalle']:.2f}" if is_ours and "vs_min_dalle" in paired else "1.00"
            if is_ours and "seconds" not in ref:
                ratio = "(min-dalle fails)"
            vs_floor = ""
            if "ms_per_token" in floor:
                vs_floor = paired["vs_floor"] if is_ours else r["ms_per_token"] / floor["ms_per_token"]
                vs_floor = f"{vs_floor:.2f}"
            counted = f"{predicted_vs_floor(dtype, int(images), device):.2f}" if is_ours else ""
            rows.append([device, dtype, images, program, f"{r['ms_per_token']:.0f}",
                         f"{r['seconds'] / int(images):.1f}", f"{r['vqgan_seconds']:.1f}", f"{r['peak_mib']:.0f}",
                         ratio, vs_floor, counted, yes_no(same_image(r, ref) if is_ours else None)])
        if "ms_per_token" in floor:
            rows.append([device, dtype, images, "floor", f"{floor['ms_per_token']:.0f}", *[""] * 4, "1.00", "1.00"])
            floor_bytes.setdefault(dtype, floor["gigabytes"])
        if "peak_mib" in ours and "peak_mib" in ref:
            change = 100 * (ours["peak_mib"] / ref["peak_mib"] - 1)
            peaks.append([device, dtype, images, f"{ours['peak_mib']:.0f}", f"{ref['peak_mib']:.0f}",
                          f"{change:+.1f}%"])
    caption = (f"Machine: {meta['machine']}, {meta['threads']} torch thread(s), torch {meta['torch']}. Run at "
               f"{meta['date']}, {meta['repeats']} repeats, load average at start {meta['load']:.2f}.")
    return {
        "cpu": [caption, "", *table(CPU_HEADER, rows)],
        "cpu-memory": table(["device", "dtype", "images", "dalle_core MiB", "min-dalle MiB", "difference"], peaks),
        "cpu-floor": table(["dtype", "decoder weight matrices"],
                           [[d, f"{gb:.2f} GB"] for d, gb in floor_bytes.items()]),
    }


def gpu_tables(results: dict, meta: dict) -> dict[str, list[str]]:
    """One row per device, model, dtype, grid and program (the device named on every row), and the
    bandwidth floor of each device and dtype."""
    rows, floors = [], []
    model = meta.get("model", "mini")
    for config, entry in results.items():
        dtype, images, _ = config.split(":")
        ours, ref, paired, floor = entry["dalle_core"], entry["min-dalle"], entry["paired"], entry["floor"]
        name = next((r["device_name"] for r in (ours, ref, floor) if "device_name" in r), "cuda")
        for program, r in (("dalle_core", ours), ("min-dalle", ref)):
            if "error" in r:
                rows.append([name, model, dtype, images, program, f"fails: {r['error'][:80]}"])
                continue
            is_ours = program == "dalle_core"
            ratio = (f"{paired['vs_min_dalle']:.2f}" if "vs_min_dalle" in paired else "") if is_ours else "1.00"
            vs_floor = f"{r['ms_per_token'] / floor['ms_per_token']:.1f}" if "ms_per_token" in floor else ""
            graph = {1.0: "yes", 0.0: "no"}.get(r.get("graph_equals_static"), "") if is_ours else ""
            rows.append([name, model, dtype, images, program, f"{r['first_seconds']:.2f}", f"{r['seconds']:.2f}",
                         f"{r['ms_per_token']:.2f}", f"{r['vqgan_seconds']:.2f}", f"{r['peak_mib']:.0f}", ratio,
                         vs_floor, yes_no(r["repeats_same"] == 1.0), yes_no(same_image(r, ref) if is_ours else None),
                         graph])
        if "ms_per_token" in floor:
            rows.append([name, model, dtype, images, "floor", "", f"{256 * floor['ms_per_token'] / 1000:.2f}",
                         f"{floor['ms_per_token']:.2f}", "", "", "", "1.0"])
            if "copy_gb_per_s" in floor and images == "1":
                step_ms = floor["gigabytes"] / floor["copy_gb_per_s"] * 1000  # streaming the weights at copy speed
                floors.append([name, dtype, f"{floor['gigabytes']:.2f}", f"{floor['copy_gb_per_s']:.0f}",
                               f"{step_ms:.2f}", f"{256 * step_ms / 1000:.2f}"])
    caption = (f"Measured by `{meta.get('command', 'python bench/run.py --device cuda')}` at {meta['date']}, torch "
               f"{meta['torch']}, {meta['repeats']} repeat(s) of a fresh process per program; in each, a first call "
               f"and then {meta.get('calls', 0)} more (*later s*: their median).")
    header = ["device", "dtype", "decoder matrices GB", "device copy GB/s", "ms a step", "s for 256 steps"]
    return {"gpu": [caption, "", *table(GPU_HEADER, rows)], "gpu-floor": table(header, floors)}


def cache_table() -> list[str]:
    """attention_state sizes by model, grid and cache dtype (computed, not measured)."""
    import torch

    from dalle_core import DalleConfig
    from dalle_core.memory import attention_state_bytes

    rows = []
    for name in ("mega", "mini"):
        config = DalleConfig.from_name(name)
        for grid in (1, 2, 3, 4):
            sizes = [attention_state_bytes(config, grid * grid, d) / 2**20 for d in (torch.float32, torch.float16)]
            rows.append([name, f"{grid}x{grid}", str(grid * grid), f"{sizes[0]:,.0f} MiB", f"{sizes[1]:,.0f} MiB"])
    return table(["model", "grid", "images", "float32 cache", "float16 cache"], rows)


def report_tables(results: dict, meta: dict) -> dict[str, list[str]]:
    """Every table this run can fill: the computed cache table always, the measured ones from
    results (CPU runs are keyed `dtype:images:cpu`); the others keep what an earlier run wrote."""
    tables = {"cache": cache_table()}
    cpu = {k: v for k, v in results.items() if k.endswith(":cpu")}
    gpu = {k: v for k, v in results.items() if not k.endswith(":cpu")}
    if cpu:
        tables |= cpu_tables(cpu, meta)
    if gpu:
        tables |= gpu_tables(gpu, meta)
    return tables


def write_report(results: dict, meta: dict, out: Path) -> None:
    """The tables into `out` (docs/performance.md), and the CPU figure beside it."""
    write_tables(out, report_tables(results, meta))
    cpu = {k: v for k, v in results.items() if k.endswith(":cpu")}
    if cpu:
        plot_cpu(cpu, out.parent / "images" / "performance.png")


def plot_cpu(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    labels, ours, refs, floors_ms = [], [], [], []
    for config, entry in results.items():
        dtype, images, _ = config.split(":")
        labels.append(f"{dtype}, n={images}")
        ours.append(entry["dalle_core"].get("ms_per_token", 0))
        refs.append(entry["min-dalle"].get("ms_per_token", 0))
        floors_ms.append(entry["floor"].get("ms_per_token", 0))
    xs = range(len(labels))
    ax.bar([x - 0.27 for x in xs], refs, 0.27, label="min-dalle 0.4.11 (0 = fails)")
    ax.bar(list(xs), ours, 0.27, label="dalle_core")
    ax.bar([x + 0.27 for x in xs], floors_ms, 0.27, label="weight-streaming floor")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("ms per decoded token")
    ax.set_title("DALL·E Mini size, random weights")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)


DEFAULT_CONFIGS = {
    "cpu": "float32:1,float32:4,bfloat16:1,bfloat16:4",
    "cuda": "float16:1,float16:9,bfloat16:1,bfloat16:9,float32:1,float32:9",
}


def parse_configs(text: str, device: str) -> list[tuple[str, str, str]]:
    """'float32:1,bfloat16:4:cuda' -> [(dtype, images, device), ...]; a wrong entry says which."""
    configs = []
    for entry in text.split(","):
        dtype, images, where = ([*entry.split(":"), device])[:3]
        if dtype not in ("float32", "float16", "bfloat16") or not images.isdigit() or int(images) < 1:
            raise ValueError(f"--configs entry {entry!r} is not dtype:images[:device] (e.g. float32:4, float16:9:cuda)")
        configs.append((dtype, images, where))
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", choices=["ours", "min-dalle", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--models-root")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--model", choices=["mini", "mega"], default="mini",
                        help="the sizes of the random weights (mega: made on --device)")
    parser.add_argument("--device", default="cpu", help="where configs without a device run: cpu or cuda")
    parser.add_argument("--calls", type=int, default=None,
                        help="timed calls after the first in each process (default: 0 on the CPU, 3 on CUDA)")
    parser.add_argument("--check-static", action="store_true",
                        help="dalle_core on CUDA: also compare the graph's tokens with the static step's")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", help="dtype:images[:device], comma separated; default: " + str(DEFAULT_CONFIGS))
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--raw", help="where every run's numbers are saved (and read from, with --report-only); "
                        "default build/bench-runs.json, build/bench-runs-cuda.json with --device cuda")
    parser.add_argument("--report-only", action="store_true", help="rewrite the tables from --raw, run nothing")
    args = parser.parse_args(argv)
    return report_errors(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    calls = args.calls if args.calls is not None else (3 if args.device == "cuda" else 0)
    raw = Path(
        args.raw or ROOT / "build" / ("bench-runs.json" if args.device == "cpu" else f"bench-runs-{args.device}.json")
    )
    if args.report_only:
        if not raw.is_file():
            raise FileNotFoundError(f"{raw} does not exist; run the benchmark first (or name a file with --raw)")
        saved = json.loads(raw.read_text())
        write_report(summarize_all(saved["runs"]), saved["meta"], Path(args.out))
        return 0
    if args.one:
        result = run_one(args.one, args.models_root, args.dtype, args.images, args.threads, args.device, args.model,
                         calls, args.check_static)
        print(json.dumps(result))
        return 0
    import torch

    config_text = args.configs or DEFAULT_CONFIGS[args.device]
    if args.configs is None and args.device == "cpu" and args.model == "mini" and torch.cuda.is_available():
        config_text += ",float16:1:cuda,float16:4:cuda"
    configs = parse_configs(config_text, args.device)
    weights_device = "cuda" if any(device == "cuda" for *_, device in configs) else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"writing random {args.model}-size weights on the {weights_device} ...", flush=True)
        make_weights(root, args.model, weights_device)
        runs: dict = {f"{d}:{n}:{dev}": {"dalle_core": [], "min-dalle": [], "floor": []} for d, n, dev in configs}
        meta = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "threads": args.threads,
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "repeats": args.repeats,
            "load": os.getloadavg()[0],
            "model": args.model,
            "calls": calls,
            "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        }
        for repeat in range(args.repeats):
            for dtype, images, device in configs:
                key = f"{dtype}:{images}:{device}"
                for program, kind in (("dalle_core", "ours"), ("min-dalle", "min-dalle"), ("floor", "floor")):
                    result = measure(kind, root, dtype, int(images), args.threads, device, args.model,
                                     calls if device != "cpu" else 0, args.check_static and kind == "ours")
                    runs[key][program].append(result)
                    print(repeat, key, program, result, flush=True)
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    write_report(summarize_all(runs), meta, Path(args.out))
    print(f"wrote the tables of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
