"""`python -m dalle_core evaluate`: how well the course model draws what it is asked.

Two measurements, both by reading pixels with `dalle_core.course.detect`:

* **VQGAN reconstruction**: held-out pictures -> tokens -> pixels; error and PSNR, and
  whether the detector still reads the right attributes after the round trip (the
  ceiling for anything the transformer generates).
* **Generation**: for every (shape, colour, position) combination one prompt in the
  plain wording ("a red circle in the top left corner"), one image each, at every
  supercondition factor and temperature asked for; the share of images in which the
  detector finds the asked colour, position and shape.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..config import TINY_ROOT, load_model_config
from ..pipeline import MinDalle
from ..vqgan import tile_images
from ..weights import atomic_write, load_module
from .batch_generation import generate_prompt_images
from .data import GEOMETRY, OBJECT_COLOURS, POSITIONS, SHAPES, Geometry, make_dataset, plain_caption
from .detect import detect, detector_accuracy
from .vqgan_encoder import VQGanEncoder
from .vqgan_train import VALIDATION_START, evaluate_reconstruction, round_trip

if TYPE_CHECKING:
    from PIL import Image

FACTORS = (1.0, 4.0, 16.0)
TEMPERATURES = (0.5, 1.0, 2.0)
TOP_K = 64  # of the course model's 1024 codes; DALL·E's 256 of 16384 is a smaller share, see docs


def evaluation_prompts(count: int | None = None) -> list[tuple[str, str, str]]:
    """(shape, colour, position) of every combination (5 x 8 x 9 = 360), or an even spread of `count`."""
    combos = list(itertools.product(SHAPES, OBJECT_COLOURS, POSITIONS))
    if count is None or count >= len(combos):
        return combos
    picks = np.linspace(0, len(combos) - 1, count).round().astype(int)
    return [combos[i] for i in picks]


def live_attributes(count: int = 27) -> list[tuple[str, str, str]]:
    """(shape, colour, position) of `count` prompts for a quick live measurement: prompt i has
    shape i mod 5, colour i mod 8, position 4i mod 9, so 27 prompts hold every shape, colour
    and position."""
    colours, positions = list(OBJECT_COLOURS), list(POSITIONS)
    return [(SHAPES[i % 5], colours[i % 8], positions[(i * 4) % 9]) for i in range(count)]


def live_accuracy(
    model: MinDalle, attributes: list[tuple[str, str, str]], temperature: float, supercondition_factor: float,
    seeds: tuple[int, ...] = (1,), top_k: int = TOP_K,
) -> tuple[dict[str, float], torch.Tensor]:
    """Shares of the images (one per prompt and seed, plain wording) in which the detector reads
    the asked colour, shape and position; also the first seed's images (n, 64, 64, 3)."""
    prompts = [plain_caption(*a) for a in attributes]
    found, first = [], None
    for seed in seeds:
        images = generate_prompt_images(model, prompts, seed=seed, temperature=temperature, top_k=top_k,
                                        supercondition_factor=float(supercondition_factor))
        found += [detect(image) for image in images]
        first = images if first is None else first
    wanted = attributes * len(seeds)
    shares = {
        "colour": float(np.mean([f.colour == a[1] for f, a in zip(found, wanted)])),
        "shape": float(np.mean([f.shape == a[0] for f, a in zip(found, wanted)])),
        "position": float(np.mean([f.position == a[2] for f, a in zip(found, wanted)])),
    }
    return shares, first


def load_vqgan_encoder(root: str | Path) -> VQGanEncoder | None:
    """The training-only VQGAN encoder shipped beside the model (strictly loaded), or None if absent."""
    path = Path(root) / "vqgan_encoder.pt"
    if not path.is_file():
        return None
    _, vqgan_config = load_model_config(root)
    return load_module(VQGanEncoder(vqgan_config), path, torch.float32, "cpu")


def generation_metrics(
    model: MinDalle, attributes: list[tuple[str, str, str]], supercondition_factor: float, temperature: float,
    top_k: int = TOP_K, seed: int = 1, batch_size: int = 120, geometry: Geometry = GEOMETRY,
) -> tuple[dict[str, float], torch.Tensor]:
    """Share of generated images showing the asked colour / position / shape; also the images."""
    prompts = [plain_caption(shape, colour, position) for shape, colour, position in attributes]
    chunks = []
    for start in range(0, len(prompts), batch_size):
        chunks.append(generate_prompt_images(
            model, prompts[start: start + batch_size], seed=seed + start, temperature=temperature, top_k=top_k,
            supercondition_factor=supercondition_factor,
        ))
    images = torch.cat(chunks)  # (n, 64, 64, 3)
    found = [detect(image, geometry) for image in images]
    hits = {
        "colour": np.mean([f.colour == a[1] for f, a in zip(found, attributes)]),
        "position": np.mean([f.position == a[2] for f, a in zip(found, attributes)]),
        "shape": np.mean([f.shape == a[0] for f, a in zip(found, attributes)]),
    }
    hits["all_three"] = np.mean(
        [(f.colour, f.position, f.shape) == (a[1], a[2], a[0]) for f, a in zip(found, attributes)]
    )
    return {k: round(float(v), 3) for k, v in hits.items()}, images


def evaluate_model(
    root: str | Path = TINY_ROOT,
    prompt_count: int | None = None,
    factors: tuple[float, ...] = FACTORS,
    temperatures: tuple[float, ...] = TEMPERATURES,
    top_k: int = TOP_K,
    seed: int = 1,
    reconstruction_count: int = 512,
    images_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """All measurements for the model in `root`; writes sample grids to `images_dir` if given."""
    started = time.time()
    model = MinDalle(models_root=root, model="tiny", is_verbose=False)
    results: dict[str, Any] = {"model_dir": str(root), "top_k": top_k, "seed": seed}
    truth_images, truth_records = make_dataset(reconstruction_count, seed=0, start=VALIDATION_START)
    results["detector_on_ground_truth"] = {
        k: round(v, 3) for k, v in detector_accuracy(truth_images, truth_records).items()
    }
    if progress:
        print("detector on held-out ground truth:", results["detector_on_ground_truth"], flush=True)
    encoder = load_vqgan_encoder(root)
    if encoder is not None:
        results["reconstruction"] = evaluate_reconstruction(model.detokenizer, encoder, reconstruction_count)
        if progress:
            print("VQGAN reconstruction:", results["reconstruction"], flush=True)
    attributes = evaluation_prompts(prompt_count)
    results["prompts"] = len(attributes)
    rows = []
    for factor, temperature in itertools.product(factors, temperatures):
        t = time.time()
        hits, _images = generation_metrics(model, attributes, factor, temperature, top_k, seed)
        rows.append({"supercondition_factor": factor, "temperature": temperature, **hits})
        if progress:
            print(f"s={factor:g} T={temperature:g}: {hits} ({time.time() - t:.0f} s)", flush=True)
    results["generation"] = rows
    if images_dir is not None:
        save_figures(model, Path(images_dir), factors, temperatures, top_k, seed)
    results["wall_time_s"] = round(time.time() - started, 1)
    return results


FIGURE_ATTRIBUTES = (
    ("circle", "red", "top left"),
    ("square", "blue", "centre"),
    ("triangle", "yellow", "bottom right"),
    ("cross", "green", "right"),
    ("star", "purple", "top"),
    ("circle", "orange", "bottom left"),
    ("square", "white", "left"),
    ("triangle", "black", "bottom"),
)


def _labelled_rows(rows: list[tuple[str, torch.Tensor]], scale: int = 2) -> Image.Image:
    """Rows of (label, images (n, H, W, 3) floats 0..255) as one picture, each row's label at its left,
    every pixel drawn as a `scale` x `scale` block."""
    from PIL import Image, ImageDraw

    label_width, count = 110, max(images.shape[0] for _, images in rows)
    grid = torch.cat([tile_images(images.float(), count, fill=255.0) for _, images in rows])  # (rows*H, count*W, 3)
    grid = grid.repeat_interleave(scale, 0).repeat_interleave(scale, 1)  # nearest-neighbour enlargement
    canvas = Image.new("RGB", (label_width + grid.shape[1], grid.shape[0]), "white")
    canvas.paste(Image.fromarray(grid.clamp(0, 255).round().to(torch.uint8).numpy()), (label_width, 0))
    draw, height = ImageDraw.Draw(canvas), grid.shape[0] // len(rows)
    for r, (label, _) in enumerate(rows):
        draw.text((6, r * height + height // 2 - 6), label, fill="black")
    return canvas


@torch.inference_mode()
def save_figures(
    model: MinDalle,
    images_dir: Path,
    factors: tuple[float, ...],
    temperatures: tuple[float, ...],
    top_k: int,
    seed: int,
    data_seed: int = 0,
) -> list[Path]:
    """The pictures docs/course-model.md shows: data, VQGAN round trip, and the settings grid."""
    images_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    # training data and its VQGAN round trip
    model_dir = model_dir_of(model)
    pictures, _ = make_dataset(8, seed=data_seed, start=VALIDATION_START)
    rows = [("data", torch.from_numpy(pictures).float())]
    encoder = load_vqgan_encoder(model_dir) if model_dir is not None else None
    if encoder is not None:
        rows.append(("VQGAN round trip", round_trip(model.detokenizer, encoder, pictures)[1]))
    paths.append(images_dir / "course-model-vqgan.png")
    _labelled_rows(rows).save(paths[-1])
    # one row per setting, one column per prompt
    prompts = [plain_caption(*a) for a in FIGURE_ATTRIBUTES]
    rows = []
    for factor, temperature in itertools.product(factors, temperatures):
        images = generate_prompt_images(
            model, prompts, seed=seed, temperature=temperature, top_k=top_k, supercondition_factor=factor
        )
        rows.append((f"s={factor:g}  T={temperature:g}", images))
    paths.append(images_dir / "course-model-settings.png")
    _labelled_rows(rows).save(paths[-1])
    return paths


def model_dir_of(model: MinDalle) -> Path | None:
    """The folder a course model was loaded from; None for modules wrapped by `MinDalle.from_modules`."""
    return model.files.decoder.parent if model.files is not None else None


def markdown_table(results: dict[str, Any]) -> str:
    """The generation results as a Markdown table (percent of images)."""
    lines = [
        "| supercondition | temperature | colour | position | shape | all three |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["generation"]:
        lines.append(
            f"| {row['supercondition_factor']:g} | {row['temperature']:g} | {row['colour']:.0%} | "
            f"{row['position']:.0%} | {row['shape']:.0%} | {row['all_three']:.0%} |"
        )
    return "\n".join(lines).replace("%", " %")


# ---------------------------------------------------------------------------- command line


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `evaluate` on a `python -m dalle_core` sub-command parser."""
    parser = subparsers.add_parser(
        "evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="measure the course model: VQGAN error, asked colour/position/shape by setting",
    )
    parser.add_argument("--model-dir", default=str(TINY_ROOT), help="folder of the model (default: the shipped one)")
    parser.add_argument("--prompts", type=int, help="number of prompts (default: all 360 combinations)")
    parser.add_argument("--top-k", type=int, default=TOP_K, help=f"top-k for sampling (default {TOP_K})")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--images-dir", help="write sample grids (temperature 1) into this folder")
    parser.add_argument("--quick", action="store_true", help="a few prompts, one setting: checks that it runs")
    parser.set_defaults(func=run_evaluate)
    return parser


def run_evaluate(args: argparse.Namespace) -> int:
    if args.prompts is not None and args.prompts < 1:
        raise ValueError(f"--prompts must be at least 1, got {args.prompts}")
    quick = (
        {"prompt_count": 8, "factors": (16.0,), "temperatures": (1.0,), "reconstruction_count": 16}
        if args.quick
        else {}
    )
    results = evaluate_model(
        args.model_dir,
        prompt_count=args.prompts,
        top_k=args.top_k,
        seed=args.seed,
        images_dir=args.images_dir,
        **quick,
    )
    print(markdown_table(results))
    if args.json:
        with atomic_write(args.json) as partial, open(partial, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
    return 0
