"""Benchmark: dalle_core against min-dalle 0.4.11 on the same random weights (DALL·E Mini size, or Mega).

Every measurement runs in a fresh subprocess (clean peak memory, no warm caches shared
between the two programs), and the runs interleave ours / min-dalle / floor, so a busy
machine slows both sides alike. Reported: ms per decoded token, seconds per image
(256 tokens + VQGAN), peak RSS, the ratio to min-dalle, and the ratio to the measured
weight-streaming floor (one batched matrix-vector product over every decoder weight:
what a token step must at least read).

    python bench/run.py                 # writes docs/performance.md and docs/images/performance.png
    python bench/run.py --repeats 1 --configs float32:1
    python bench/run.py --report-only   # rewrite the report from build/bench-runs.json
    python bench/run.py --model mega --device cuda --repeats 1   # the GPU section (Mega-size weights)

On CUDA each process times a first call, then `--calls` more (median), and checks that
the same seed gave the same image every time; the report's GPU section names the device
on every row. bench/gpu_check.py is the short version for a GPU session with little time.
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
def measure(
    kind: str,
    root: Path,
    dtype: str,
    images: int,
    threads: int,
    device: str,
    model: str = "mini",
    calls: int = 0,
    check_static: bool = False,
) -> dict:
    command = [
        sys.executable,
        __file__,
        "--one",
        kind,
        "--models-root",
        str(root),
        "--dtype",
        dtype,
        "--images",
        str(images),
        "--threads",
        str(threads),
        "--device",
        device,
        "--model",
        model,
        "--calls",
        str(calls),
    ] + (["--check-static"] if check_static else [])
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


def cache_table() -> list[str]:
    """attention_state sizes by model, grid and cache dtype (computed, not measured)."""
    import torch

    from dalle_core import DalleConfig
    from dalle_core.memory import attention_state_bytes

    lines = ["| model | grid | images | float32 cache | float16 cache |", "|---|---|---|---|---|"]
    for name in ("mega", "mini"):
        config = DalleConfig.from_name(name)
        for grid in (1, 2, 3, 4):
            sizes = [attention_state_bytes(config, grid * grid, d) / 2**20 for d in (torch.float32, torch.float16)]
            lines.append(f"| {name} | {grid}x{grid} | {grid * grid} | {sizes[0]:,.0f} MiB | {sizes[1]:,.0f} MiB |")
    return lines


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


TIME_PROSE = """\
## Where the time goes, and what dalle_core changes

A decoder step multiplies a batch of 2n rows (n images, unconditional and conditional) by
every decoder weight matrix. With n small, each weight is used for only 2n multiply-adds
per load: the step is memory-bound, its cost about bytes read / memory bandwidth. Notebook
08 works this out (bytes per token, the roofline, why the cache makes decoding linear).

- **Cross-attention keys and values once per prompt.** min-dalle recomputes
  `k_proj(encoder_state)` and `v_proj(encoder_state)` in every layer at every one of the 256
  steps, a (2n x 64) x (E x E) product twice per layer, although `encoder_state` never
  changes. dalle_core computes them once (`DalleBartDecoder.encoder_keys_values`).
- **Fused attention over the written slots only (the eager step).** `scaled_dot_product_attention`
  reads cache slots 0..i in place; min-dalle attends over all 256 slots, masks the future, and its
  einsum copies the slice (half the cache traffic on average, and no copies). On a GPU the
  step reads all 256 slots under a mask instead, for a CUDA graph (next section).
- **No per-layer cache copies.** The cache is written in place, one slot per step.
- **`torch.topk` for the k-th largest logit** instead of sorting all 16384.
- **bfloat16 weights, float32 attention on the CPU.** The CPU's fused attention is about
  ten times slower in bfloat16 than in float32 (2 ms against 0.2 ms per call here), so on
  the CPU the cache stays float32, as in min-dalle, and attention runs in float32 on it;
  only the queries (one row per image) are converted. On a GPU the cache takes the model's
  dtype (`pipeline.default_attention_dtype`).

"""

MEMORY_PROSE = """\
## Where the memory goes

- **Loading.** Modules are built on the meta device and the file's tensors are converted
  one at a time and assigned (`weights.load_module`): no random weights, and the peak is
  about one copy of the model in the chosen dtype plus one file tensor.
- **The VQGAN's activations.** At 256x256 one activation of the last level is 128 x 256 x
  256 floats, 32 MiB per image. Its residual blocks free each input as soon as the next
  output exists (one statement per step), and swish and the residual sum work in place.
- **Freed memory leaves the process.** glibc raises its mmap threshold whenever a large
  block is freed, so after loading, the VQGAN's activations come from the heap and their
  memory stays in the process after they die. `dalle_core.memory` fixes the threshold at
  1 MiB when a `MinDalle` loads on the CPU, so the peak counts only tensors alive at once.
  The same setting would lower min-dalle's peak too, mostly during its loading; the
  comparison above runs min-dalle as it ships.

## Cache memory (`attention_state`)

(layers x 4n x 256 x embed) elements for n images: 2n rows, each with a key and a value
slot. `MinDalle(..., attention_state_dtype=torch.float16)` halves it (keys and values are
then rounded to float16, so logits differ slightly from a float32 cache);
`dalle_core.memory.attention_state_bytes(config, n, dtype)` computes it:

"""

GPU_PROSE = [
    "## On a GPU: the same image for the same seed, no first-call stall, one launch a step",
    "",
    "Measured on an NVIDIA H200 before this design (issue 16): Mega 3x3 in float16 took 3.5 s, of",
    "which the GPU was busy 0.88 s; a step launched about 727 kernels, and the launches set the",
    "pace. The first call of a grid size took 14-16 s, and the same seed gave four different",
    "float16 images in one process. What the code does about each (`dalle_core/graph.py`):",
    "",
    "- **One launch a step: a CUDA graph.** On CUDA, `MinDalle` records one decoder step, sampling",
    "  included, into a `torch.cuda.CUDAGraph` and replays it 256 times. A replay repeats the",
    "  recorded kernels on the recorded addresses, so the step keeps every shape and address: the",
    "  position is a tensor `token_index` (1,) that the step advances, the previous tokens are read",
    "  from and the drawn ones written into `image_tokens`, and the settings are tensors.",
    "- **A fixed-length read of the cache.** The eager step reads slots 0..i, a new key length at",
    "  every position. The graph's step reads all 256 slots under the mask `slot <= i`, as min-dalle",
    "  does (inside `decoder.fixed_length()`): one shape per grid size, so any per-shape setup",
    "  happens once. The price is reading the whole cache at every step, twice the eager step's",
    "  average: for Mega 3x3 in float16 0.84 GiB a step, about 0.2 ms at 4 TB/s, against 2.9 GB",
    "  of weights.",
    "- **A pinned attention kernel.** On CUDA, `attention.attend` runs torch's fused attention",
    "  with only the memory-efficient kernel allowed, the plain formula (MATH) where that kernel",
    "  refuses the inputs. Why this one: it takes an arbitrary mask (flash attention takes none,",
    "  and its causal option aligns the one query with the first key, not the last); it reads",
    "  the cache where it lies, any stride, where MATH first copies keys and values into",
    "  per-head order; its forward pass computes each output in one block, without atomics or",
    "  split reductions whose order could change between runs, and builds nothing per shape;",
    "  and it can be captured. Left to itself, torch ran cuDNN's kernel there (issue 16's profile",
    "  on an H200), which builds an execution plan for each new shape: the likely cause of the",
    "  14-16 s first call (profiled, not proven), and a candidate for the float16 drift.",
    "- **Sampling inside the graph, the same draws.** Nothing in the step waits for the host: the",
    "  k-th largest logit comes from a sort (`torch.topk`'s output shape depends on k), and the draw",
    "  is `sampling.draw_once`, argmax(p / q) with q ~ Exponential(1), which is what",
    "  `torch.multinomial(p, 1)` computes after checking p (on the host, in some torch versions):",
    "  the same random numbers, the same tokens (tested). A replay reads the generator's seed and",
    "  offset when it runs, so the seed set after capturing gives the eager step's numbers.",
    "- **Same seed, same image.** A replay runs the same kernels on the same numbers; cuBLAS",
    "  gives the same bits for the same shapes on one GPU and one stream; sort, argmax and the",
    "  elementwise kernels are deterministic. Run eagerly on the CPU the fixed-shape step draws",
    "  the eager step's tokens (tests/test_graph.py); the repeat and the graph against the same",
    "  step run without a graph are checked on a GPU by tests/test_graph.py and bench/gpu_check.py.",
    "- **Captured at each generation.** The graph points at the cache. Keeping Mega 3x3's 0.84 GiB",
    "  cache alive between calls would put it beside the VQGAN's activations, and by the sizes",
    "  (5.0 GiB of weights, 1.05 GiB of cache and cross-attention keys and values while decoding,",
    "  6.7 GiB measured) the VQGAN sets today's float16 peak. So each generation captures anew:",
    "  one warm-up step and one recorded step (bench/gpu_check.py prints what that costs), and",
    "  the cache is freed before the VQGAN runs, as before.",
    "- **The CPU keeps the eager step.** There are no launches to save; reading only slots 0..i",
    "  halves the cache traffic; and the notebooks record tensors, which a replay cannot (a",
    "  `trace.recording()` also selects the eager step on CUDA). `MinDalle.decode_path` chooses by",
    "  hand: 'eager', 'static' (the fixed-shape step without a graph) or 'graph'.",
    "",
]


SECTION_MARKERS = {
    "cpu": ("<!-- bench: cpu -->", "<!-- /bench: cpu -->"),
    "gpu": ("<!-- bench: gpu -->", "<!-- /bench: gpu -->"),
}


def kept_section(text: str, name: str) -> list[str] | None:
    """The lines of a section an earlier run wrote (a CPU run keeps the GPU rows, and back)."""
    start, end = SECTION_MARKERS[name]
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n").split("\n")


def cpu_section(results: dict, meta: dict) -> list[str]:
    lines = [
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
        "| device | dtype | images | program | ms / token | s / image | VQGAN s | peak MiB | time vs min-dalle "
        "| vs floor | bytes vs floor (counted) | same image |",
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
            ratio = (
                "(min-dalle fails)" if "seconds" not in ref else (f"{paired['vs_min_dalle']:.2f}" if ours else "1.00")
            )
            same = "" if not ours or "image_sum" not in ref else ("yes" if r["image_sum"] == ref["image_sum"] else "no")
            vs_floor = (
                "" if not floor else (f"{paired['vs_floor']:.2f}" if ours else f"{r['ms_per_token'] / floor:.2f}")
            )
            lines.append(
                f"| {device} | {dtype} | {images} | {program} | {r['ms_per_token']:.0f} "
                f"| {r['seconds'] / int(images):.1f} | "
                f"{r['vqgan_seconds']:.1f} | {r['peak_mib']:.0f} | {ratio} | {vs_floor} | "
                f"{f'{predicted_vs_floor(dtype, int(images), device):.2f}' if ours else ''} | {same} |"
            )
        if floor:
            lines.append(f"| {device} | {dtype} | {images} | floor | {floor:.0f} | | | | | 1.00 | 1.00 | |")
        ours = entry["dalle_core"]
        if "peak_mib" in ours and "peak_mib" in ref:
            verdicts.append(
                f"{device} {dtype}, {images} image(s): {ours['peak_mib']:.0f} vs {ref['peak_mib']:.0f} MiB "
                f"({100 * (ours['peak_mib'] / ref['peak_mib'] - 1):+.1f}%)"
            )
    floors = ", ".join(
        f"{k.split(':')[0]} {v['floor'].get('gigabytes', 0):.2f} GB"
        for k, v in results.items()
        if k.split(":")[1] == "1" and "gigabytes" in v["floor"]
    )
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
    ]
    return lines


def gpu_section(results: dict, meta: dict) -> list[str]:
    """One row per device, model, dtype, grid and program; the device named on every row."""
    lines = [
        f"Measured by `{meta.get('command', 'python bench/run.py --device cuda')}` at {meta['date']}, "
        f"torch {meta['torch']}, {meta['repeats']} repeat(s) of a fresh process per program; in each, a first call "
        f"and then {meta.get('calls', 0)} more (*later s*: their median). Peak: torch's peak allocated GPU memory "
        "during one call.",
        "",
        "| device | model | dtype | images | program | first call s | later s | ms / token | VQGAN s | peak MiB "
        "| time vs min-dalle | vs floor | same seed, same image | same image as min-dalle | graph = static step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    floors = []
    for config, entry in results.items():
        dtype, images, _ = config.split(":")
        model, ref, paired, floor = meta.get("model", "mini"), entry["min-dalle"], entry["paired"], entry["floor"]
        name = next((r["device_name"] for r in (entry["dalle_core"], ref, floor) if "device_name" in r), "cuda")
        for program in ("dalle_core", "min-dalle"):
            r = entry[program]
            if "error" in r:
                lines.append(
                    f"| {name} | {model} | {dtype} | {images} | {program} | fails: {r['error'][:80]} |" + " |" * 10
                )
                continue
            ours = program == "dalle_core"
            ratio = (
                f"{paired['vs_min_dalle']:.2f}" if ours and "vs_min_dalle" in paired else ("1.00" if not ours else "")
            )
            vs_floor = f"{r['ms_per_token'] / floor['ms_per_token']:.1f}" if "ms_per_token" in floor else ""
            same_ref = (
                "" if not ours or "image_sum" not in ref else ("yes" if r["image_sum"] == ref["image_sum"] else "no")
            )
            graph = {1.0: "yes", 0.0: "no"}.get(r.get("graph_equals_static"), "") if ours else ""
            lines.append(
                f"| {name} | {model} | {dtype} | {images} | {program} "
                f"| {r['first_seconds']:.2f} | {r['seconds']:.2f} | "
                f"{r['ms_per_token']:.2f} | {r['vqgan_seconds']:.2f} | {r['peak_mib']:.0f} | {ratio} | {vs_floor} | "
                f"{'yes' if r['repeats_same'] == 1.0 else 'no'} | {same_ref} | {graph} |"
            )
        if "ms_per_token" in floor:
            lines.append(
                f"| {name} | {model} | {dtype} | {images} | floor | | {256 * floor['ms_per_token'] / 1000:.2f} | "
                f"{floor['ms_per_token']:.2f} | | | | 1.0 | | | |"
            )
            if "copy_gb_per_s" in floor and images == "1":
                streaming = floor["gigabytes"] / floor["copy_gb_per_s"] * 1000  # ms a step
                floors.append(
                    f"{name}, {dtype}: {floor['gigabytes']:.2f} GB of decoder matrices at the "
                    f"{floor['copy_gb_per_s']:.0f} GB/s of a device copy, {streaming:.2f} ms a step, "
                    f"{256 * streaming / 1000:.2f} s for 256 steps"
                )
    lines += [
        "",
        "*floor*: every decoder weight matrix multiplied once by the step's 2n rows, replayed from a CUDA "
        "graph (*ms / token*; *later s* = 256 of them). Streaming the weights at the copy bandwidth instead: "
        + ("; ".join(floors) or "not measured")
        + ".",
    ]
    return lines


GPU_PENDING = [
    "Not measured with this code yet: no GPU was at hand when it was written. `python bench/gpu_check.py`",
    "(under 4 minutes on an H100) prints the table; `python bench/run.py --model mega --device cuda` writes it here.",
]


def write_report(results: dict, meta: dict, out: Path) -> None:
    """Rewrite `out`; a section without results in this run keeps the rows of the last run that had them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    existing = out.read_text() if out.exists() else ""
    cpu_results = {k: v for k, v in results.items() if k.endswith(":cpu")}
    gpu_results = {k: v for k, v in results.items() if not k.endswith(":cpu")}
    cpu_lines = cpu_section(cpu_results, meta) if cpu_results else kept_section(existing, "cpu") or ["No CPU run yet."]
    gpu_lines = gpu_section(gpu_results, meta) if gpu_results else kept_section(existing, "gpu") or GPU_PENDING
    lines = [
        "# Performance",
        "",
        SECTION_MARKERS["cpu"][0],
        *cpu_lines,
        SECTION_MARKERS["cpu"][1],
        "",
        *TIME_PROSE.splitlines(),
        *GPU_PROSE,
        SECTION_MARKERS["gpu"][0],
        *gpu_lines,
        SECTION_MARKERS["gpu"][1],
        "",
        *MEMORY_PROSE.splitlines(),
        *cache_table(),
    ]
    out.write_text("\n".join(lines) + "\n")
    if not cpu_results:
        return
    results = cpu_results
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


DEFAULT_CONFIGS = {
    "cpu": "float32:1,float32:4,bfloat16:1,bfloat16:4",
    "cuda": "float16:1,float16:9,bfloat16:1,bfloat16:9,float32:1,float32:9",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", choices=["ours", "min-dalle", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--models-root")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument(
        "--model",
        choices=["mini", "mega"],
        default="mini",
        help="the sizes of the random weights (mega: made on --device)",
    )
    parser.add_argument("--device", default="cpu", help="where configs without a device run: cpu or cuda")
    parser.add_argument(
        "--calls",
        type=int,
        default=None,
        help="timed calls after the first in each process (default: 0 on the CPU, 3 on CUDA)",
    )
    parser.add_argument(
        "--check-static",
        action="store_true",
        help="dalle_core on CUDA: also compare the graph's tokens with the static step's",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", help="dtype:images[:device], comma separated; default: " + str(DEFAULT_CONFIGS))
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument(
        "--raw",
        help="where every run's numbers are saved (and read from, with --report-only); "
        "default build/bench-runs.json, build/bench-runs-cuda.json with --device cuda",
    )
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from --raw, run nothing")
    args = parser.parse_args()
    calls = args.calls if args.calls is not None else (3 if args.device == "cuda" else 0)
    raw = Path(
        args.raw or ROOT / "build" / ("bench-runs.json" if args.device == "cpu" else f"bench-runs-{args.device}.json")
    )
    if args.report_only:
        saved = json.loads(raw.read_text())
        write_report(summarize_all(saved["runs"]), saved["meta"], Path(args.out))
        return 0
    if args.one:
        print(
            json.dumps(
                run_one(
                    args.one,
                    args.models_root,
                    args.dtype,
                    args.images,
                    args.threads,
                    args.device,
                    args.model,
                    calls,
                    args.check_static,
                )
            )
        )
        return 0
    import torch

    config_text = args.configs or DEFAULT_CONFIGS[args.device]
    if args.configs is None and args.device == "cpu" and args.model == "mini" and torch.cuda.is_available():
        config_text += ",float16:1:cuda,float16:4:cuda"
    configs = [(c.split(":") + [args.device])[:3] for c in config_text.split(",")]  # dtype, images, device
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
                    result = measure(
                        kind,
                        root,
                        dtype,
                        int(images),
                        args.threads,
                        device,
                        args.model,
                        calls if device != "cpu" else 0,
                        args.check_static and kind == "ours",
                    )
                    runs[key][program].append(result)
                    print(repeat, key, program, result, flush=True)
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    write_report(summarize_all(runs), meta, Path(args.out))
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
