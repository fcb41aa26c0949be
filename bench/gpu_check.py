"""The GPU check in one command, under 4 minutes on an H100/H200 (float16).

Makes Mega-size random weights on the GPU (bench/run.py's make_weights), then runs
dalle_core and min-dalle 0.4.11 each in a fresh process per dtype and prints one table:
for 1 image and a 3x3 grid, the first call, the median of --calls later calls, peak GPU
memory, whether the same seed gave the same image every time, whether the two programs
drew the same image, and (dalle_core) whether the CUDA graph's tokens equal those of the
same fixed-shape step run without a graph. It also says whether the memory-efficient
attention kernel takes the decoder's shapes (else attention falls back to the formula)
and what capturing the step's CUDA graph costs (a `graph.CapturedStep` built and timed on its
own, with the shapes of each grid).

The GPU machine has torch but neither min-dalle nor emoji, and cannot download: copy them
from this venv into an ignored folder here, carry it, and put it on PYTHONPATH there:

    python bench/gpu_check.py --prepare-deps build/gpu-deps            # here, once
    # device tool: carry ["build/gpu-deps"], timeout_s 300, command:
    PYTHONPATH=$PWD:$PWD/build/gpu-deps python3 bench/gpu_check.py --json $OUT/gpu_check.json
    # all three dtypes (about twice as long: min-dalle gets one timed call after its warm-up):
    ... python3 bench/gpu_check.py --dtypes float16,bfloat16,float32 --min-dalle-calls 1
    # and to write docs/performance.md's GPU tables from the same run:
    ... python3 bench/gpu_check.py --out docs/performance.md && cp docs/performance.md $OUT/

Smoke test without a GPU (the course model, dalle_core only; min-dalle has no tiny model):

    python bench/gpu_check.py --device cpu --model tiny --grids 1 --calls 1
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import run as bench  # noqa: E402  bench/run.py: the weights, the floor, the report

from dalle_core.__main__ import report_errors  # noqa: E402

PROMPT, SEED = bench.PROMPT, bench.SEED


# ---------------------------------------------------------------- inside a fresh process
def attention_probe(model) -> str:
    """Does the memory-efficient kernel alone take the decoder's attention shapes?"""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    config, rows = model.config, 18  # a 3x3 grid: 2n = 18 rows
    heads, dim = config.attention_head_count, config.embed_count // config.attention_head_count
    dtype = model.attention_state_dtype
    state = torch.zeros(rows * 2, config.image_token_count, config.embed_count, dtype=dtype, device="cuda")
    query = torch.randn(rows, heads, 1, dim, dtype=dtype, device="cuda")
    keys = state[:rows].view(rows, config.image_token_count, heads, dim).transpose(1, 2)  # the cache, in place
    cases = {
        "self-attention": (keys, torch.arange(config.image_token_count, device="cuda")[None, :] <= 5),
        "cross-attention": (torch.randn(rows, heads, 64, dim, dtype=dtype, device="cuda"),
                            torch.ones(rows, 1, 1, 64, dtype=torch.bool, device="cuda")),
    }
    answers = []
    for name, (k, mask) in cases.items():
        try:
            with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
                torch.nn.functional.scaled_dot_product_attention(query, k, k, attn_mask=mask)
            answers.append(f"{name}: yes")
        except RuntimeError as error:
            answers.append(f"{name}: NO ({str(error).splitlines()[0][:100]})")
    return "; ".join(answers)


def capture_seconds(model, grid_size: int) -> float:
    """Seconds to record one CUDA graph of the decoder step, as `MinDalle` does at the start of
    each generation: a `StaticDecodeStep` over the grid's cache and inputs (zeros: a capture's
    cost depends on the shapes, not the values), then `CapturedStep` built and timed."""
    import torch

    from dalle_core.graph import CapturedStep, StaticDecodeStep
    from dalle_core.pipeline import new_attention_state

    config, n, device, dtype = model.config, grid_size**2, model.device, model.attention_state_dtype
    with torch.inference_mode():
        attention_mask = torch.ones(2 * n, 1, 1, config.text_token_count, dtype=torch.bool, device=device)
        encoder_state = torch.zeros(2 * n, config.text_token_count, config.embed_count, device=device)
        keys_values = [(k.to(dtype), v.to(dtype))
                       for k, v in model.decoder.encoder_keys_values(encoder_state.to(model.dtype))]
        image_tokens = torch.full((n, config.image_token_count + 1), config.image_start_token, device=device)
        attention_state = new_attention_state(config, n, dtype, device)
        step = StaticDecodeStep(model.decoder, attention_mask, keys_values, attention_state, image_tokens,
                                temperature=1.0, top_k=256, supercondition_factor=16.0)
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        CapturedStep(step)
        torch.cuda.synchronize(device)
        return time.perf_counter() - start


def worker(kind: str, models_root: str, model_name: str, dtype_name: str, device: str, grids: list[int],
           calls: int) -> dict:
    """Load one program, then per grid size: a first call, `calls` more, the checks."""
    import torch

    dtype = getattr(torch, dtype_name)
    is_cuda = device == "cuda"
    sync = torch.cuda.synchronize if is_cuda else (lambda: None)
    start = time.perf_counter()
    if kind == "ours":
        from dalle_core.pipeline import MinDalle

        if model_name == "tiny":
            model = MinDalle(dtype=dtype, device=device, is_verbose=False)
        else:
            model = MinDalle(models_root, dtype=dtype, device=device, is_mega=model_name == "mega", is_verbose=False)
        detokenize = lambda tokens: model.detokenizer(False, tokens)  # noqa: E731
    else:
        import min_dalle.min_dalle as reference

        reference.requests.get = lambda *a, **k: None  # no network: the files are present
        model = reference.MinDalle(models_root, dtype=dtype, device=device, is_mega=model_name == "mega",
                                   is_verbose=False)
        detokenize = lambda tokens: model.detokenizer.forward(False, tokens)  # noqa: E731
    sync()
    result: dict = {"load_seconds": time.perf_counter() - start,
                    "device_name": torch.cuda.get_device_name() if is_cuda else "cpu"}
    for grid in grids:
        images = grid * grid
        if is_cuda:
            torch.cuda.reset_peak_memory_stats()
        times, sums = bench.timed_generations(model, grid, calls, sync)
        peak = torch.cuda.max_memory_allocated() / 2**20 if is_cuda else bench.peak_rss_mib()
        vqgan = bench.timed_detokenize(detokenize, images, device, sync)
        later = statistics.median(times[1:]) if calls else times[0]
        entry = {"seconds": later, "first_seconds": times[0], "all_seconds": times,
                 "ms_per_token": 1000 * (later - vqgan) / 256, "vqgan_seconds": vqgan, "peak_mib": peak,
                 "image_sum": sums[0], "repeats_same": float(len(set(sums)) == 1), "device_name": result["device_name"]}
        if kind == "ours":  # the default path's tokens against the fixed-shape step run without a graph
            tokens_default = model.generate_image_tokens(PROMPT, SEED, grid)
            model.decode_path = "static" if is_cuda else "eager"
            tokens_other = model.generate_image_tokens(PROMPT, SEED, grid)
            model.decode_path = None
            entry["graph_equals_static"] = float(torch.equal(tokens_default, tokens_other))
            if is_cuda:
                entry["capture_seconds"] = capture_seconds(model, grid)
        result[str(images)] = entry
    if kind == "ours" and is_cuda:
        result["efficient_attention"] = attention_probe(model)
    return result


# ---------------------------------------------------------------- the driver
def prepare_deps(folder: Path) -> None:
    """Copy min-dalle and emoji (pure Python) from this environment into `folder`."""
    import emoji
    import min_dalle

    folder.mkdir(parents=True, exist_ok=True)
    for package in (min_dalle, emoji):
        source = Path(package.__file__).parent
        shutil.copytree(source, folder / source.name, dirs_exist_ok=True)
    print(f"copied min_dalle and emoji into {folder}; carry it and add it to PYTHONPATH on the GPU machine")


def run_worker(kind: str, root: Path, args: argparse.Namespace, dtype: str, calls: int) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--models-root", str(root), "--model", args.model,
               "--dtypes", dtype, "--device", args.device, "--grids", args.grids, "--calls", str(calls)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.process_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over --process-timeout {args.process_timeout:.0f} s", "wall_seconds": args.process_timeout}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["?"]
        return {"error": lines[-1], "stderr_tail": lines[-25:], "wall_seconds": time.perf_counter() - started}
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"wall_seconds": time.perf_counter() - started}


def yes_no(value: float | None) -> str:
    return {1.0: "yes", 0.0: "NO"}.get(value, "")


def print_table(results: dict, grids: list[int]) -> None:
    header = ["device", "dtype", "images", "program", "first call s", "later s (median)", "ratio first/later",
              "peak MiB", "same seed, same image", "same as min-dalle", "graph = static step"]
    rows, notes = [], []
    for dtype, programs in results.items():
        ours, ref = programs.get("dalle_core", {}), programs.get("min-dalle", {})
        for key in (str(grid * grid) for grid in grids):
            for program, r in programs.items():
                if "error" in r:
                    rows.append(["", dtype, key, program, f"fails: {r['error'][:100]}"])
                    continue
                e = r[key]
                same_ref = ""
                if program == "dalle_core" and key in ref:
                    same_ref = "yes" if e["image_sum"] == ref[key]["image_sum"] else "no"
                rows.append([e["device_name"], dtype, key, program, f"{e['first_seconds']:.2f}", f"{e['seconds']:.2f}",
                             f"{e['first_seconds'] / e['seconds']:.2f}", f"{e['peak_mib']:.0f}",
                             yes_no(e["repeats_same"]), same_ref, yes_no(e.get("graph_equals_static"))])
        captures = [f"{key} image(s) {1000 * e['capture_seconds']:.0f} ms"
                    for key, e in ours.items() if isinstance(e, dict) and "capture_seconds" in e]
        if captures:
            notes.append(f"{dtype}: dalle_core loaded in {ours['load_seconds']:.1f} s; "
                         f"one graph capture took {', '.join(captures)}")
        if "efficient_attention" in ours:
            notes.append(f"{dtype}: memory-efficient attention takes the shapes: {ours['efficient_attention']}")
        if "load_seconds" in ref:
            notes.append(f"{dtype}: min-dalle loaded in {ref['load_seconds']:.1f} s")
    print("\n".join(bench.table(header, rows) + [""] + notes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=["ours", "min-dalle"], help=argparse.SUPPRESS)
    parser.add_argument("--models-root", help="reuse weights written before (else a temporary folder)")
    parser.add_argument("--model", choices=["mega", "mini", "tiny"], default="mega")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", default="float16", help="comma separated: float16,bfloat16,float32")
    parser.add_argument("--grids", default="1,3", help="grid sizes, comma separated")
    parser.add_argument("--calls", type=int, default=3, help="timed calls after the first (dalle_core)")
    parser.add_argument("--min-dalle-calls", type=int, default=None, help="the same for min-dalle (default: --calls)")
    parser.add_argument("--skip-min-dalle", action="store_true")
    parser.add_argument("--process-timeout", type=float, default=230, help="seconds for one program's process")
    parser.add_argument("--json", help="also save every number here")
    parser.add_argument("--out", help="write the GPU tables of this report (docs/performance.md)")
    parser.add_argument("--prepare-deps", metavar="FOLDER", help="copy min-dalle and emoji here and stop")
    args = parser.parse_args(argv)
    return report_errors(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if not all(g.strip().isdigit() and int(g) > 0 for g in args.grids.split(",")):
        raise ValueError(f"--grids must be positive integers separated by commas, such as 1,3; got {args.grids!r}")
    grids = [int(g) for g in args.grids.split(",")]
    if args.prepare_deps:
        prepare_deps(Path(args.prepare_deps))
        return 0
    if args.worker:
        result = worker(args.worker, args.models_root, args.model, args.dtypes, args.device, grids, args.calls)
        print(json.dumps(result))
        return 0

    import torch

    began = time.perf_counter()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("no CUDA GPU here; for a smoke test: --device cpu --model tiny --grids 1 --calls 1")
    with_min_dalle = not args.skip_min_dalle and args.model != "tiny"
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.models_root or tmp)
        if args.model != "tiny" and not (root / f"dalle_bart_{args.model}" / "decoder.pt").is_file():
            start = time.perf_counter()
            bench.make_weights(root, args.model, args.device)
            print(
                f"random {args.model}-size weights written on the {args.device} in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
        for dtype in args.dtypes.split(","):
            results[dtype] = {"dalle_core": run_worker("ours", root, args, dtype, args.calls)}
            print(f"{dtype} dalle_core: {results[dtype]['dalle_core'].get('wall_seconds', 0):.0f} s", flush=True)
            if with_min_dalle:
                calls = args.calls if args.min_dalle_calls is None else args.min_dalle_calls
                results[dtype]["min-dalle"] = run_worker("min-dalle", root, args, dtype, calls)
                print(f"{dtype} min-dalle: {results[dtype]['min-dalle'].get('wall_seconds', 0):.0f} s", flush=True)
        floors = {}
        if args.out and args.device == "cuda":
            for dtype in args.dtypes.split(","):
                for grid in grids:
                    floors[f"{dtype}:{grid * grid}"] = bench.run_floor(
                        getattr(torch, dtype), grid * grid, "cuda", args.model
                    )
    print()
    print_table(results, grids)
    for dtype, programs in results.items():
        for program, r in programs.items():
            if "stderr_tail" in r:
                print(f"\n{dtype} {program} failed:", *r["stderr_tail"], sep="\n    ")
    print("\n(the first call of the first grid is also the process's first generation)")
    print(f"whole check: {time.perf_counter() - began:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.out:

        def one(result: dict, images: int) -> list[dict]:  # bench/run.py's shape: a list of runs
            return [result.get(str(images), {"error": result.get("error", "not run")})]

        # a CPU smoke run is labelled apart, so that it fills the GPU section's table (of a scratch copy)
        label = "cuda" if args.device == "cuda" else f"smoke-{args.device}"
        runs = {
            f"{dtype}:{grid * grid}:{label}": {
                "dalle_core": one(programs["dalle_core"], grid * grid),
                "min-dalle": one(programs.get("min-dalle", {}), grid * grid),
                "floor": [floors.get(f"{dtype}:{grid * grid}", {"error": "not measured"})],
            }
            for dtype, programs in results.items()
            for grid in grids
        }
        meta = {
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "repeats": 1,
            "model": args.model,
            "calls": args.calls,
            "command": "python bench/gpu_check.py " + " ".join(sys.argv[1:]),
        }
        bench.write_report(bench.summarize_all(runs), meta, Path(args.out))
        print(f"wrote {args.out}")
    failed = [d for d, programs in results.items() for p, r in programs.items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
