"""Benchmark: dalle_core against min-dalle 0.4.11 on the same random DALL·E Mini weights.

Every measurement runs in a fresh subprocess (clean peak memory, no warm caches shared
between the two programs), and the runs interleave ours / min-dalle / floor, so a busy
machine slows both sides alike. Reported: ms per decoded token, seconds per image
(256 tokens + VQGAN), peak RSS, the ratio to min-dalle, and the ratio to the measured
weight-streaming floor (one batched matrix-vector product over every decoder weight:
what a token step must at least read).

    python bench/run.py                 # writes docs/performance.md and docs/images/performance.png
    python bench/run.py --repeats 1 --configs float32:1
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

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red circle on a green background"
SEED = 7


# ---------------------------------------------------------------- inside a subprocess
def make_weights(models_root: Path) -> None:
    """Random mini-size checkpoints in min-dalle's layout, float16 as the published ones."""
    import torch

    from dalle_core import DalleBartDecoder, DalleBartEncoder, DalleConfig, VQGanDetokenizer

    sys.path.insert(0, str(ROOT))
    from tests.conftest import randomize, write_tokenizer

    folder = models_root / "dalle_bart_mini"
    write_tokenizer(folder)
    for name, cls in (("encoder", DalleBartEncoder), ("decoder", DalleBartDecoder)):
        module = randomize(cls(DalleConfig.mini()), seed=len(name))
        torch.save({k: v.half() for k, v in module.state_dict().items()}, folder / f"{name}.pt")
        del module
    (models_root / "vqgan").mkdir(exist_ok=True)
    torch.save(randomize(VQGanDetokenizer(), seed=9).state_dict(), models_root / "vqgan" / "detoker.pt")


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(kind: str, models_root: str, dtype_name: str, images: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    grid_size = int(images**0.5)
    if kind == "floor":
        return run_floor(dtype, images)
    if kind == "ours":
        from dalle_core.pipeline import MinDalle

        model = MinDalle(models_root, dtype=dtype, device="cpu", is_mega=False, is_verbose=False)
        detokenize = lambda tokens: model.detokenizer(False, tokens)  # noqa: E731
    else:
        import min_dalle.min_dalle as reference

        reference.requests.get = lambda *a, **k: None  # no network: the files are present
        torch.set_num_threads(threads)  # min-dalle sets its own at import
        model = reference.MinDalle(models_root, dtype=dtype, device="cpu", is_mega=False, is_verbose=False)
        detokenize = lambda tokens: model.detokenizer.forward(False, tokens)  # noqa: E731
    start = time.perf_counter()
    images_out = model.generate_images(PROMPT, SEED, grid_size=grid_size)
    total = time.perf_counter() - start
    with torch.inference_mode():
        tokens = torch.zeros(images, 256, dtype=torch.long)
        start = time.perf_counter()
        detokenize(tokens)
        vqgan = time.perf_counter() - start
    digest = float(images_out.double().sum())
    return {"seconds": total, "ms_per_token": 1000 * (total - vqgan) / 256, "vqgan_seconds": vqgan,
            "peak_mib": peak_rss_mib(), "image_sum": digest}


def run_floor(dtype, images: int) -> dict:
    """One product of a (2n, in) batch with every decoder weight, as a step must read them."""
    import torch

    from dalle_core import DalleBartDecoder, DalleConfig

    with torch.device("meta"):
        decoder = DalleBartDecoder(DalleConfig.mini())
    weights = [torch.randn(p.shape, dtype=dtype) * 0.01 for n, p in decoder.named_parameters()
               if p.dim() == 2 and not n.startswith("embed")]
    byte_count = sum(w.numel() * w.element_size() for w in weights)
    x = {w.shape[1]: torch.randn(2 * images, w.shape[1], dtype=dtype) for w in weights}
    times = []
    for _ in range(6):
        start = time.perf_counter()
        for w in weights:
            torch.nn.functional.linear(x[w.shape[1]], w)
        times.append(time.perf_counter() - start)
    return {"ms_per_token": 1000 * statistics.median(times[1:]), "gigabytes": byte_count / 1e9, "peak_mib": peak_rss_mib()}


# ---------------------------------------------------------------- the driver
def measure(kind: str, root: Path, dtype: str, images: int, threads: int) -> dict:
    command = [sys.executable, __file__, "--one", kind, "--models-root", str(root),
               "--dtype", dtype, "--images", str(images), "--threads", str(threads)]
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


def write_report(results: dict, meta: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        "# Performance",
        "",
        "Generated by `python bench/run.py` (see its docstring for the method). Mini-size random",
        "weights (float16 files, like the published ones), CPU, one prompt, seed 7; every number",
        "is the median of the repeated, interleaved runs, each in a fresh process.",
        "",
        f"Machine: {meta['machine']}, {meta['threads']} torch threads, torch {meta['torch']}. Run at {meta['date']}, "
        f"{meta['repeats']} repeat(s), load average at start {meta['load']}.",
        "",
        "| dtype | images | program | ms / token | s / image | VQGAN s | peak RSS MiB | vs min-dalle | vs floor | same image |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config, entry in results.items():
        dtype, images = config.split(":")
        floor = entry["floor"].get("ms_per_token")
        ref = entry["min-dalle"]
        for program in ("dalle_core", "min-dalle"):
            r = entry[program]
            if "error" in r:
                lines.append(f"| {dtype} | {images} | {program} | fails: {r['error'][:80]} | | | | | | |")
                continue
            ratio = f"{r['seconds'] / ref['seconds']:.2f}" if "seconds" in ref else "(min-dalle fails)"
            same = "" if program == "min-dalle" or "image_sum" not in ref else ("yes" if r["image_sum"] == ref["image_sum"] else "no")
            lines.append(
                f"| {dtype} | {images} | {program} | {r['ms_per_token']:.0f} | {r['seconds'] / int(images):.1f} | "
                f"{r['vqgan_seconds']:.1f} | {r['peak_mib']:.0f} | {ratio} | "
                f"{r['ms_per_token'] / floor:.2f} | {same} |"
            )
        if floor:
            lines.append(f"| {dtype} | {images} | floor | {floor:.0f} | | | | | 1.00 | |")
    lines += [
        "",
        "The floor reads every decoder weight matrix once ("
        + ", ".join(f"{k.split(':')[0]}: {v['floor'].get('gigabytes', 0):.2f} GB" for k, v in results.items() if ':1' in k)
        + ") with the step's batch of 2n rows; dalle_core's step reads less than that, since the",
        "cross-attention keys and values are computed once per prompt, so it can beat 1.00.",
        "",
        "![ms per token](images/performance.png)",
        "",
        "## Where the time goes, and what dalle_core changes",
        "",
        "A decoder step multiplies a batch of 2n rows (n images, unconditional and conditional) by",
        "every decoder weight matrix. With n small, each weight is used for only 2n multiply-adds",
        "per load: the step is memory-bound, its cost about bytes read / memory bandwidth.",
        "",
        "- **Cross-attention keys and values once per prompt.** min-dalle recomputes",
        "  `k_proj(encoder_state)` and `v_proj(encoder_state)` in every layer at every one of the 256",
        "  steps, a (2n x 64) x (E x E) product twice per layer, although `encoder_state` never",
        "  changes. dalle_core computes them once (`DalleBartDecoder.encoder_keys_values`).",
        "- **Attend to the written slots only.** min-dalle attends over all 256 cache slots and",
        "  masks the future; dalle_core reads slots 0..i, half the cache traffic on average.",
        "- **No per-layer cache copies.** The cache is written in place, one slot per step.",
        "- **`torch.topk` for the k-th largest logit** instead of sorting all 16384.",
        "",
        "## Cache memory (`attention_state`)",
        "",
        "(layers x 4n x 256 x embed) elements: mega float32 3.0 GiB for a 4x4 grid, 1.7 GiB for 3x3,",
        "192 MiB for one image; mini a quarter of that. `MinDalle(..., attention_state_dtype=torch.float16)`",
        "halves it; `dalle_core.pipeline.attention_state_bytes(config, n, dtype)` computes it.",
    ]
    out.write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels, ours, refs, floors = [], [], [], []
    for config, entry in results.items():
        labels.append(config.replace(":", ", n="))
        ours.append(entry["dalle_core"].get("ms_per_token", 0))
        refs.append(entry["min-dalle"].get("ms_per_token", 0))
        floors.append(entry["floor"].get("ms_per_token", 0))
    xs = range(len(labels))
    ax.bar([x - 0.27 for x in xs], refs, 0.27, label="min-dalle 0.4.11")
    ax.bar(list(xs), ours, 0.27, label="dalle_core")
    ax.bar([x + 0.27 for x in xs], floors, 0.27, label="weight-streaming floor")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("ms per decoded token")
    ax.set_title("DALL·E Mini size, random weights, CPU")
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
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--configs", default="float32:1,float32:4,bfloat16:1", help="dtype:images, comma separated")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.models_root, args.dtype, args.images, args.threads)))
        return 0
    import torch

    configs = [c.split(":") for c in args.configs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("writing random mini-size weights ...", flush=True)
        make_weights(root)
        runs: dict = {f"{d}:{n}": {"dalle_core": [], "min-dalle": [], "floor": []} for d, n in configs}
        meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "threads": args.threads, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
                "repeats": args.repeats, "load": os.getloadavg()[0]}
        for repeat in range(args.repeats):
            for dtype, images in configs:
                key = f"{dtype}:{images}"
                for program, kind in (("dalle_core", "ours"), ("min-dalle", "min-dalle"), ("floor", "floor")):
                    result = measure(kind, root, dtype, int(images), args.threads)
                    runs[key][program].append(result)
                    print(repeat, key, program, result, flush=True)
    results = {key: {p: summarize(r) for p, r in entry.items()} for key, entry in runs.items()}
    write_report(results, meta, Path(args.out))
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
