"""Benchmark: dalle_core against min-dalle 0.4.11 on the same random DALL·E Mini weights.

Every measurement runs in a fresh subprocess (clean peak memory, no warm caches shared
between the two programs), and the runs interleave ours / min-dalle / floor, so a busy
machine slows both sides alike. Reported: ms per decoded token, seconds per image
(256 tokens + VQGAN), peak RSS, the ratio to min-dalle, and the ratio to the measured
weight-streaming floor (one batched matrix-vector product over every decoder weight:
what a token step must at least read).

    python bench/run.py                 # writes docs/performance.md and docs/images/performance.png
    python bench/run.py --repeats 1 --configs float32:1
    python bench/run.py --report-only   # rewrite the report from build/bench-runs.json
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

from dalle_core.memory import peak_rss_mib

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red circle on a green background"
SEED = 7


# ---------------------------------------------------------------- inside a subprocess
def make_weights(models_root: Path) -> None:
    """Random mini-size checkpoints in min-dalle's layout, float16 as the published ones."""
    import torch

    from dalle_core.lab.random_weights import write_random_model

    write_random_model(models_root, "mini", torch.float16)


def run_one(kind: str, models_root: str, dtype_name: str, images: int, threads: int, device: str = "cpu") -> dict:
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    grid_size = int(images**0.5)
    if kind == "floor":
        return run_floor(dtype, images, device)
    if kind == "ours":
        from dalle_core.pipeline import MinDalle

        model = MinDalle(models_root, dtype=dtype, device=device, is_mega=False, is_verbose=False)
        detokenize = lambda tokens: model.detokenizer(False, tokens)  # noqa: E731
    else:
        import min_dalle.min_dalle as reference

        reference.requests.get = lambda *a, **k: None  # no network: the files are present
        torch.set_num_threads(threads)  # min-dalle sets its own at import
        model = reference.MinDalle(models_root, dtype=dtype, device=device, is_mega=False, is_verbose=False)
        detokenize = lambda tokens: model.detokenizer.forward(False, tokens)  # noqa: E731
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    start = time.perf_counter()
    images_out = model.generate_images(PROMPT, SEED, grid_size=grid_size)
    sync()
    total = time.perf_counter() - start
    with torch.inference_mode():
        tokens = torch.zeros(images, 256, dtype=torch.long, device=device)
        start = time.perf_counter()
        detokenize(tokens)
        sync()
        vqgan = time.perf_counter() - start
    digest = float(images_out.double().sum())
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    return {"seconds": total, "ms_per_token": 1000 * (total - vqgan) / 256, "vqgan_seconds": vqgan,
            "peak_mib": peak_gpu or peak_rss_mib(), "image_sum": digest}


def run_floor(dtype, images: int, device: str = "cpu") -> dict:
    """One product of a (2n, in) batch with every decoder weight, as a step must read them."""
    import torch

    from dalle_core import DalleBartDecoder, DalleConfig

    with torch.device("meta"):
        decoder = DalleBartDecoder(DalleConfig.mini())
    weights = [torch.randn(p.shape, dtype=dtype, device=device) * 0.01 for n, p in decoder.named_parameters()
               if p.dim() == 2 and not n.startswith("embed")]
    byte_count = sum(w.numel() * w.element_size() for w in weights)
    x = {w.shape[1]: torch.randn(2 * images, w.shape[1], dtype=dtype, device=device) for w in weights}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = []
    for _ in range(6):
        start = time.perf_counter()
        for w in weights:
            torch.nn.functional.linear(x[w.shape[1]], w)
        sync()
        times.append(time.perf_counter() - start)
    return {"ms_per_token": 1000 * statistics.median(times[1:]), "gigabytes": byte_count / 1e9, "peak_mib": peak_rss_mib()}


# ---------------------------------------------------------------- the driver
def measure(kind: str, root: Path, dtype: str, images: int, threads: int, device: str) -> dict:
    command = [sys.executable, __file__, "--one", kind, "--models-root", str(root),
               "--dtype", dtype, "--images", str(images), "--threads", str(threads), "--device", device]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last}
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"]}
    return {key: statistics.median(r[key] for r in ok) for key in ok[0]} | {"n": len(ok)}


def cache_table() -> list[str]:
    """attention_state sizes by model, grid and cache dtype (computed, not measured)."""
    import torch

    from dalle_core import DalleConfig
    from dalle_core.pipeline import attention_state_bytes

    lines = ["| model | grid | images | float32 cache | float16 cache |", "|---|---|---|---|---|"]
    for name in ("mega", "mini"):
        config = DalleConfig.from_name(name)
        for grid in (1, 2, 3, 4):
            sizes = [attention_state_bytes(config, grid * grid, d) / 2**20 for d in (torch.float32, torch.float16)]
            lines.append(f"| {name} | {grid}x{grid} | {grid * grid} | {sizes[0]:,.0f} MiB | {sizes[1]:,.0f} MiB |")
    return lines


def summarize_all(runs: dict) -> dict:
    return {key: {p: summarize(r) for p, r in entry.items()} | {"paired": paired_ratios(entry)}
            for key, entry in runs.items()}


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


def write_report(results: dict, meta: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        "# Performance",
        "",
        "Generated by `python bench/run.py` (see its docstring for the method). Mini-size random",
        "weights (float16 files, like the published ones), one prompt, seed 7. Each run is a fresh",
        "process; the runs interleave dalle_core / min-dalle 0.4.11 / floor, and every number is the",
        "median over the repeats; dalle_core's ratios are taken within each repeat, then the median.",
        "Peak memory is the process's VmHWM (resident set high-water mark; on CUDA, torch's peak",
        "allocated GPU memory).",
        "",
        f"Machine: {meta['machine']}, {meta['threads']} torch thread(s), torch {meta['torch']}. Run at {meta['date']}, "
        f"{meta['repeats']} repeats, load average at start {meta['load']:.2f}.",
        "",
        "| device | dtype | images | program | ms / token | s / image | VQGAN s | peak MiB | time vs min-dalle | vs floor | bytes vs floor (counted) | same image |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for config, entry in results.items():
        dtype, images, device = config.split(":")
        floor = entry["floor"].get("ms_per_token")
        ref = entry["min-dalle"]
        paired = entry["paired"]
        for program in ("dalle_core", "min-dalle"):
            r = entry[program]
            if "error" in r:
                lines.append(f"| {device} | {dtype} | {images} | {program} | fails: {r['error'][:80]} | | | | | | | |")
                continue
            ours = program == "dalle_core"
            if "seconds" not in ref:
                ratio = "(min-dalle fails)"
            else:
                ratio = f"{paired['vs_min_dalle']:.2f}" if ours else "1.00"
            same = "" if not ours or "image_sum" not in ref else ("yes" if r["image_sum"] == ref["image_sum"] else "no")
            if floor:
                vs_floor = f"{paired['vs_floor']:.2f}" if ours else f"{r['ms_per_token'] / floor:.2f}"
            else:
                vs_floor = ""
            lines.append(
                f"| {device} | {dtype} | {images} | {program} | {r['ms_per_token']:.0f} | {r['seconds'] / int(images):.1f} | "
                f"{r['vqgan_seconds']:.1f} | {r['peak_mib']:.0f} | {ratio} | {vs_floor} | "
                f"{f'{predicted_vs_floor(dtype, int(images), device):.2f}' if ours else ''} | {same} |"
            )
        if floor:
            lines.append(f"| {device} | {dtype} | {images} | floor | {floor:.0f} | | | | | 1.00 | 1.00 | |")
        ours = entry["dalle_core"]
        if "peak_mib" in ours and "peak_mib" in ref:
            verdicts.append(f"{device} {dtype}, {images} image(s): {ours['peak_mib']:.0f} vs {ref['peak_mib']:.0f} MiB "
                            f"({100 * (ours['peak_mib'] / ref['peak_mib'] - 1):+.1f}%)")
    floors = ", ".join(f"{k.split(':')[0]} {v['floor'].get('gigabytes', 0):.2f} GB" for k, v in results.items()
                       if k.split(":")[1] == "1" and "gigabytes" in v["floor"])
    lines += [
        "",
        f"The floor reads every decoder weight matrix once ({floors}) with the step's batch of 2n",
        "rows, and nothing else. dalle_core's step reads fewer weights (the cross-attention keys",
        "and values are computed once per prompt, so their two matrices per layer are not read)",
        "but also the key/value cache, which grows with the position and with the number of",
        "images. *bytes vs floor (counted)* is the ratio of all bytes a generation reads to the",
        "floor's bytes, counted by `dalle_core.lab.cost` (notebook 08): a step that streams its bytes",
        "as fast as the floor streams weights would measure that ratio. On the CPU the cache is",
        "float32 even for bfloat16 weights (see below), which is why four bfloat16 images read the",
        "most beyond the floor. The measured ratio is above the counted one because attention",
        "reads the cache more slowly than matrix products stream weights: torch's profiler on a",
        "bfloat16 step with four images at position 200 (measured once, while writing this)",
        "gave 56 ms in matrix products and 32 ms in attention.",
        "",
        "Peak memory, dalle_core against min-dalle: " + ("; ".join(verdicts) or "no pair ran") + ".",
        "",
        "![ms per token](images/performance.png)",
        "",
        "## Where the time goes, and what dalle_core changes",
        "",
        "A decoder step multiplies a batch of 2n rows (n images, unconditional and conditional) by",
        "every decoder weight matrix. With n small, each weight is used for only 2n multiply-adds",
        "per load: the step is memory-bound, its cost about bytes read / memory bandwidth. Notebook",
        "08 works this out (bytes per token, the roofline, why the cache makes decoding linear).",
        "",
        "- **Cross-attention keys and values once per prompt.** min-dalle recomputes",
        "  `k_proj(encoder_state)` and `v_proj(encoder_state)` in every layer at every one of the 256",
        "  steps, a (2n x 64) x (E x E) product twice per layer, although `encoder_state` never",
        "  changes. dalle_core computes them once (`DalleBartDecoder.encoder_keys_values`).",
        "- **Fused attention over the written slots only.** `scaled_dot_product_attention` reads",
        "  cache slots 0..i in place; min-dalle attends over all 256 slots, masks the future, and its",
        "  einsum copies the slice (half the cache traffic on average, and no copies).",
        "- **No per-layer cache copies.** The cache is written in place, one slot per step.",
        "- **`torch.topk` for the k-th largest logit** instead of sorting all 16384.",
        "- **bfloat16 weights, float32 attention on the CPU.** The CPU's fused attention is about",
        "  ten times slower in bfloat16 than in float32 (2 ms against 0.2 ms per call here), so on",
        "  the CPU the cache stays float32, as in min-dalle, and attention runs in float32 on it;",
        "  only the queries (one row per image) are converted. On a GPU the cache takes the model's",
        "  dtype (`pipeline.default_attention_dtype`).",
        "",
        "## Where the memory goes",
        "",
        "- **Loading.** Modules are built on the meta device and the file's tensors are converted",
        "  one at a time and assigned (`weights.load_module`): no random weights, and the peak is",
        "  about one copy of the model in the chosen dtype plus one file tensor.",
        "- **The VQGAN's activations.** At 256x256 one activation of the last level is 128 x 256 x",
        "  256 floats, 32 MiB per image. Its residual blocks free each input as soon as the next",
        "  output exists (one statement per step), and swish and the residual sum work in place.",
        "- **Freed memory leaves the process.** glibc raises its mmap threshold whenever a large",
        "  block is freed, so after loading, the VQGAN's activations come from the heap and their",
        "  memory stays in the process after they die. `dalle_core.memory` fixes the threshold at",
        "  1 MiB when a `MinDalle` loads on the CPU, so the peak counts only tensors alive at once.",
        "  The same setting would lower min-dalle's peak too, mostly during its loading; the",
        "  comparison above runs min-dalle as it ships.",
        "",
        "## Cache memory (`attention_state`)",
        "",
        "(layers x 4n x 256 x embed) elements for n images: 2n rows, each with a key and a value",
        "slot. `MinDalle(..., attention_state_dtype=torch.float16)` halves it (keys and values are",
        "then rounded to float16, so logits differ slightly from a float32 cache);",
        "`dalle_core.pipeline.attention_state_bytes(config, n, dtype)` computes it:",
        "",
        *cache_table(),
    ]
    out.write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    labels, ours, refs, floors_ms = [], [], [], []
    for config, entry in results.items():
        dtype, images, device = config.split(":")
        labels.append(f"{dtype}, n={images}" + ("" if device == "cpu" else f", {device}"))
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
    (out.parent / "images").mkdir(exist_ok=True)
    fig.savefig(out.parent / "images" / "performance.png", dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", choices=["ours", "min-dalle", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--models-root")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", default="float32:1,float32:4,bfloat16:1,bfloat16:4", help="dtype:images, comma separated")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--raw", default=str(ROOT / "build" / "bench-runs.json"),
                        help="where every run's numbers are saved (and read from, with --report-only)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from --raw, run nothing")
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads(Path(args.raw).read_text())
        write_report(summarize_all(saved["runs"]), saved["meta"], Path(args.out))
        return 0
    if args.one:
        print(json.dumps(run_one(args.one, args.models_root, args.dtype, args.images, args.threads, args.device)))
        return 0
    import torch

    config_text = args.configs + (",float16:1:cuda,float16:4:cuda" if torch.cuda.is_available() else "")
    configs = [(c.split(":") + ["cpu"])[:3] for c in config_text.split(",")]  # dtype, images, device
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("writing random mini-size weights ...", flush=True)
        make_weights(root)
        runs: dict = {f"{d}:{n}:{dev}": {"dalle_core": [], "min-dalle": [], "floor": []} for d, n, dev in configs}
        meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "threads": args.threads, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
                "repeats": args.repeats, "load": os.getloadavg()[0]}
        for repeat in range(args.repeats):
            for dtype, images, device in configs:
                key = f"{dtype}:{images}:{device}"
                for program, kind in (("dalle_core", "ours"), ("min-dalle", "min-dalle"), ("floor", "floor")):
                    result = measure(kind, root, dtype, int(images), args.threads, device)
                    runs[key][program].append(result)
                    print(repeat, key, program, result, flush=True)
    Path(args.raw).parent.mkdir(parents=True, exist_ok=True)
    Path(args.raw).write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    write_report(summarize_all(runs), meta, Path(args.out))
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
