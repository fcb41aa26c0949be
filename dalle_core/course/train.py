"""`python -m dalle_core train`: build the course model from nothing.

Four stages, each feeding the next, all from one data seed (no files are read):

1. BPE on the captions                -> vocab.json, merges.txt
2. VQGAN autoencoder on the pictures  -> detoker.pt (decoder half + codebook)
3. pictures -> image tokens with the trained VQGAN encoder, captions -> text tokens
4. DALL·E encoder + decoder by teacher forcing -> encoder.pt, decoder.pt

plus config.json (both configs, so `MinDalle()` can build the modules) and
metadata.json (seeds, steps, git commit, wall time, metrics). `--quick` runs the same
stages at toy sizes in seconds; the tests use it.

The files go to build/course-model/ unless --out names another folder. The shipped model
in dalle_core/assets/tiny/, which every notebook loads, is replaced only with
--replace-shipped; the default settings rebuild it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..config import TINY_ROOT, DalleConfig, VQGanConfig
from ..pipeline import MinDalle
from ..tokenizer import TextTokenizer
from ..vqgan import tile_images
from ..weights import atomic_write, load_module
from .batch_generation import generate_prompt_images
from .bpe_train import save_bpe, train_bpe
from .dalle_train import course_dalle_config, pack_text, train_dalle
from .data import (
    IMAGE_SIZE,
    OBJECT_COLOURS,
    POSITIONS,
    SHAPES,
    images_to_tensor,
    make_dataset,
    make_scene,
    plain_caption,
)
from .detect import detect
from .vqgan_train import (
    VALIDATION_START,
    VQGanHistory,
    course_vqgan_config,
    evaluate_reconstruction,
    load_autoencoder,
    tokenize_dataset,
    train_vqgan,
)

DEFAULT_OUT = Path("build") / "course-model"  # outside the package: the shipped model stays as it is
DEFAULT_SAMPLES = Path("build") / "course-model-samples"
REPLACE_FLAG = "--replace-shipped"
SAMPLE_PROMPTS = (
    plain_caption("circle", "red", "top left"),
    plain_caption("square", "blue", "centre"),
    plain_caption("triangle", "yellow", "bottom right"),
    plain_caption("cross", "green", "right"),
    plain_caption("star", "purple", "top"),
    plain_caption("circle", "orange", "bottom left", background="black"),
    plain_caption("square", "white", "left", background="gray"),
    plain_caption("triangle", "black", "centre", background="white"),
)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained model; saved in metadata.json."""

    data_seed: int = 0
    seed: int = 0
    # captions naming a wrong colour (data.make_scene): the plain conditional model (s = 1)
    # copies that noise and super-conditioning removes it, the contrast notebook 04 teaches
    wrong_colour_share: float = 0.2
    vqgan_from: str | None = None  # a model folder whose VQGAN to reuse instead of training one
    caption_count: int = 20000  # captions the BPE is trained on
    bpe_vocab_size: int = 512
    vqgan_steps: int = 1500
    vqgan_batch_size: int = 32
    vqgan_learning_rate: float = 3e-3
    vqgan_object_weight: float = 10.0  # loss weight of object pixels (vqgan_train.object_weights)
    vqgan_edge_weight: float = 8.0  # extra factor on outline pixels (sharp star points; docs/course-model.md)
    example_count: int = 30000  # (caption, image tokens) pairs for the transformer
    validation_count: int = 512
    dalle_steps: int = 8000
    dalle_batch_size: int = 32
    dalle_learning_rate: float = 2e-3
    caption_drop: float = 0.2  # share of each batch repeated with the empty prompt
    label_smoothing: float = 0.0  # captioned rows
    unconditional_smoothing: float = 0.3  # empty-prompt rows (see dalle_core.course.dalle_train)
    weights_dtype: str = "float16"  # how encoder/decoder/detoker tensors are stored
    threads: int = 0  # torch threads; 0 = as set before (the command line: DALLE_CORE_THREADS, else 1)
    is_quick: bool = False

    @classmethod
    def quick(cls, **changes: Any) -> TrainSettings:
        """Toy sizes: every stage runs, the whole thing takes seconds."""
        base = cls(
            caption_count=500, vqgan_steps=30, vqgan_batch_size=8, example_count=256, validation_count=32,
            dalle_steps=40, dalle_batch_size=16, dalle_learning_rate=3e-3, weights_dtype="float32", is_quick=True,
        )
        return replace(base, **changes)


def quick_vqgan_config() -> VQGanConfig:
    """Toy VQGAN with the course model's 16x16 token grid (factor 4 on 64x64 pictures)."""
    return VQGanConfig(vocab_count=64, embed_count=8, channel_counts=(8, 8, 16), attention_levels=(2,),
                       block_count=1, group_count=4, name="quick")


def quick_dalle_config(text_vocab_count: int, image_vocab_count: int, image_token_count: int) -> DalleConfig:
    return DalleConfig(
        layer_count=1, attention_head_count=2, embed_count=32, glu_embed_count=64, text_vocab_count=text_vocab_count,
        image_vocab_count=image_vocab_count, image_token_count=image_token_count,
        image_code_count=image_vocab_count, image_start_token=image_vocab_count, name="quick",
    )


def live_dalle_config(config: DalleConfig) -> DalleConfig:
    """The size notebook 07 trains live in about half a minute of one CPU core: `config`'s
    vocabularies and 256 image tokens, 2 layers of width 64 (the course model: 3 of 128)."""
    return config.replace(layer_count=2, attention_head_count=2, embed_count=64, glu_embed_count=128, name="live")


def shipped_examples(
    model, vqgan_encoder, start: int, count: int, settings: TrainSettings = TrainSettings()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training pairs of data examples start..start+count-1, made with a trained model's files:
    text_tokens (count, 64) from `model.tokenizer`, image_tokens (count, 256) from `vqgan_encoder`
    and the codebook in `model.detokenizer` (captions with `settings.wrong_colour_share`)."""
    from .data import render
    from .vqgan_train import tokenize_pictures

    scenes = [make_scene(settings.data_seed, i, wrong_colour_share=settings.wrong_colour_share)
              for i in range(start, start + count)]
    image_tokens = tokenize_pictures(model.detokenizer, vqgan_encoder, np.stack([render(s) for s in scenes]))
    text_tokens = pack_text(model.tokenizer, [s.caption for s in scenes], model.config.text_token_count)
    return text_tokens, image_tokens


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def save_state_dict(module: torch.nn.Module, path: Path, dtype: torch.dtype) -> None:
    """A plain state dict (no buffers of our own), floats stored as `dtype`, written whole or not at all."""
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in module.state_dict().items()}
    with atomic_write(path) as partial:
        torch.save(state, partial)


def save_json(data: Any, path: Path) -> None:
    with atomic_write(path) as partial, open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def save_image_grid(images: torch.Tensor, path: Path, columns: int) -> None:
    """(n, H, W, 3) floats 0..255 -> one PNG, `columns` images per row."""
    grid = tile_images(images.float(), columns).clamp(0, 255).round().to(torch.uint8)  # (rows*H, columns*W, 3)
    with atomic_write(path) as partial:
        Image.fromarray(grid.numpy()).save(partial)


def train_course_model(
    settings: TrainSettings, out_dir: str | Path = DEFAULT_OUT, samples_dir: str | Path | None = DEFAULT_SAMPLES,
    progress: bool = True,
) -> dict[str, Any]:
    """Run all four stages and write the model files into `out_dir`; returns the metadata."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = Path(samples_dir) if samples_dir is not None else None
    if settings.threads:
        torch.set_num_threads(settings.threads)
    dtype = {"float16": torch.float16, "float32": torch.float32}[settings.weights_dtype]
    started = time.time()
    wall: dict[str, float] = {}

    def say(message: str) -> None:
        if progress:
            print(message, flush=True)

    # 1. text tokenizer ----------------------------------------------------------------
    t = time.time()
    captions = [_caption(settings, i) for i in range(settings.caption_count)]
    vocab, merges = train_bpe(captions, vocab_size=settings.bpe_vocab_size)
    save_bpe(vocab, merges, out)
    tokenizer = TextTokenizer(vocab, merges)
    wall["bpe_s"] = time.time() - t
    say(f"BPE: {len(vocab)} subwords, {len(merges)} merges")

    # 2. VQGAN ----------------------------------------------------------------------------
    t = time.time()
    vqgan_config = quick_vqgan_config() if settings.is_quick else course_vqgan_config()

    def on_vqgan_sample(step: int, pixels: torch.Tensor, reconstruction: torch.Tensor) -> None:
        if samples is not None:  # 8 originals (B, 3, H, W) in 0..1 above their reconstructions
            pairs = torch.cat([pixels[:8], reconstruction[:8].clamp(0, 1)]).permute(0, 2, 3, 1) * 255  # (2m, H, W, 3)
            save_image_grid(pairs, samples / f"vqgan_step{step + 1:05d}.png", columns=len(pairs) // 2)

    if settings.vqgan_from:  # reuse a trained VQGAN: only the transformer is retrained
        autoencoder, vqgan_history = load_autoencoder(settings.vqgan_from), VQGanHistory()
        vqgan_config = autoencoder.config
    else:
        autoencoder, vqgan_history = train_vqgan(
            vqgan_config, settings.vqgan_steps, settings.vqgan_batch_size, settings.vqgan_learning_rate,
            data_seed=settings.data_seed, seed=settings.seed, object_weight=settings.vqgan_object_weight,
            edge_weight=settings.vqgan_edge_weight, on_sample=on_vqgan_sample,
            sample_every=max(settings.vqgan_steps // 4, 1), progress=progress,
        )
    detokenizer = autoencoder.export_detokenizer().to(memory_format=torch.contiguous_format)
    save_state_dict(detokenizer, out / "detoker.pt", dtype)
    # Not needed to generate; shipped so the course can turn a picture into tokens.
    save_state_dict(autoencoder.encoder.to(memory_format=torch.contiguous_format), out / "vqgan_encoder.pt", dtype)
    wall["vqgan_s"] = time.time() - t
    # measured through the saved (possibly float16) codebook and decoder, as MinDalle will use them
    stored = load_module(type(detokenizer)(vqgan_config), out / "detoker.pt", torch.float32, "cpu")
    reconstruction = evaluate_reconstruction(
        stored, autoencoder.encoder, count=64 if settings.is_quick else 512, data_seed=settings.data_seed,
    )
    say(f"VQGAN: held-out reconstruction {reconstruction}")

    # 3. tokens for the transformer ----------------------------------------------------
    t = time.time()
    image_tokens = tokenize_dataset(autoencoder, settings.example_count, settings.data_seed, progress=progress)
    text_count = DalleConfig.tiny().text_token_count  # min-dalle's 64 text positions, the quick model's too
    text_tokens = pack_text(tokenizer, captions_for(settings, 0, settings.example_count, captions), text_count)
    val_captions = [_caption(settings, VALIDATION_START + i) for i in range(settings.validation_count)]
    val_text = pack_text(tokenizer, val_captions, text_count)
    val_images = _tokenize_range(autoencoder, settings, VALIDATION_START, settings.validation_count)
    wall["tokenize_s"] = time.time() - t

    # 4. transformer ---------------------------------------------------------------------
    t = time.time()
    dalle_config = (
        quick_dalle_config(len(vocab), vqgan_config.vocab_count, (IMAGE_SIZE // vqgan_config.downsample_factor) ** 2)
        if settings.is_quick else course_dalle_config(len(vocab))
    )
    probe_prompts = [plain_caption(s, c, p) for s, c, p in _probe_attributes(64)]
    probe_log: list[dict[str, float]] = []

    def on_validate(step: int, encoder, decoder) -> None:
        model = MinDalle.from_modules(tokenizer, encoder.eval(), decoder.eval(), stored)
        images = generate_prompt_images(
            model, probe_prompts, seed=1, temperature=1.0, top_k=64, supercondition_factor=16.0
        )
        asked = [c for _, c, _ in _probe_attributes(64)]
        share = float(np.mean([detect(image).colour == colour for image, colour in zip(images, asked)]))
        probe_log.append({"step": step + 1, "colour_share_s16": share})
        say(f"step {step + 1}: asked colour in {share:.0%} of {len(asked)} probe images (s=16, T=1)")
        if samples is not None:
            grid = generate_prompt_images(
                model, list(SAMPLE_PROMPTS) * 4, seed=2, temperature=1.0, top_k=64, supercondition_factor=16.0
            )
            save_image_grid(grid, samples / f"dalle_step{step + 1:05d}.png", columns=len(SAMPLE_PROMPTS))

    encoder, decoder, dalle_history = train_dalle(
        dalle_config,
        text_tokens,
        image_tokens,
        settings.dalle_steps,
        settings.dalle_batch_size,
        settings.dalle_learning_rate,
        caption_drop=settings.caption_drop,
        label_smoothing=settings.label_smoothing,
        unconditional_smoothing=settings.unconditional_smoothing,
        seed=settings.seed,
        validation=(val_text, val_images),
        validate_every=max(settings.dalle_steps // 5, 1),
        on_validate=on_validate,
        progress=progress,
    )
    save_state_dict(encoder, out / "encoder.pt", dtype)
    save_state_dict(decoder, out / "decoder.pt", dtype)
    wall["dalle_s"] = time.time() - t

    save_json({"dalle": dalle_config.to_dict(), "vqgan": vqgan_config.to_dict()}, out / "config.json")
    wall["total_s"] = time.time() - started
    metadata = {
        "settings": asdict(settings),
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "wall_time_s": {k: round(v, 1) for k, v in wall.items()},
        "bpe": {"vocab_size": len(vocab), "merges": len(merges)},
        "vqgan": {
            "final_train_loss": _tail_mean(vqgan_history.loss),
            "reused_from": settings.vqgan_from,
            "restarted_codes": vqgan_history.restarted,
            "held_out": reconstruction,
        },
        "dalle": {
            "final_train_loss": _tail_mean(dalle_history.loss),
            "validation_loss": [(s + 1, round(v, 4)) for s, v in dalle_history.validation],
            "probe": probe_log,
            "parameters": {"encoder": _count(encoder), "decoder": _count(decoder), "detokenizer": _count(detokenizer)},
        },
    }
    save_json(metadata, out / "metadata.json")
    say(f"wrote {', '.join(sorted(p.name for p in out.iterdir() if p.is_file()))} to {out} in {wall['total_s']:.0f} s")
    return metadata


def captions_for(settings: TrainSettings, start: int, count: int, known: list[str]) -> list[str]:
    """Captions of examples start..start+count-1, reusing the ones already made for the BPE."""
    return [known[i] if i < len(known) else _caption(settings, i) for i in range(start, start + count)]


def _caption(settings: TrainSettings, index: int) -> str:
    return make_scene(settings.data_seed, index, wrong_colour_share=settings.wrong_colour_share).caption


def _tokenize_range(autoencoder, settings: TrainSettings, start: int, count: int) -> torch.Tensor:
    images, _ = make_dataset(count, seed=settings.data_seed, start=start)
    return autoencoder.tokenize(images_to_tensor(images))


def _probe_attributes(count: int) -> list[tuple[str, str, str]]:
    """A fixed, balanced list of (shape, colour, position) for quick checks during training."""
    colours, positions = list(OBJECT_COLOURS), list(POSITIONS)
    return [
        (SHAPES[i % len(SHAPES)], colours[i % len(colours)], positions[(i * 7) % len(positions)]) for i in range(count)
    ]


def _tail_mean(values: list[float], count: int = 50) -> float | None:
    tail = values[-count:]
    return round(float(np.mean(tail)), 5) if tail else None


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------- command line


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `train` on a `python -m dalle_core` sub-command parser."""
    defaults = TrainSettings()
    parser = subparsers.add_parser(
        "train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="build the course model from scratch (deterministic; docs/course-model.md)",
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"folder for the model files (default: {DEFAULT_OUT})")
    parser.add_argument(REPLACE_FLAG, action="store_true",
                        help="allow --out dalle_core/assets/tiny: overwrite the shipped course model")
    parser.add_argument("--samples-dir", default=str(DEFAULT_SAMPLES), help="where sample grids go along the way")
    parser.add_argument("--quick", action="store_true", help="toy sizes, seconds: checks that every stage runs")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="torch seed for initialisation and batches")
    parser.add_argument("--data-seed", type=int, default=defaults.data_seed, help="seed of the synthetic data set")
    parser.add_argument("--vqgan-steps", type=int, help=f"VQGAN batches (default {defaults.vqgan_steps})")
    parser.add_argument("--dalle-steps", type=int, help=f"transformer batches (default {defaults.dalle_steps})")
    parser.add_argument("--examples", type=int, help=f"tokenized training pairs (default {defaults.example_count})")
    parser.add_argument(
        "--wrong-colour-share",
        type=float,
        default=defaults.wrong_colour_share,
        help=f"share of captions naming a wrong colour (default {defaults.wrong_colour_share}, as the shipped model)",
    )
    parser.add_argument("--vqgan-from", help="reuse the VQGAN of this model folder; train only the transformer")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_train)
    return parser


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    if not 0.0 <= args.wrong_colour_share < 1.0:
        raise ValueError(f"--wrong-colour-share must be in [0, 1), got {args.wrong_colour_share}")
    changes: dict[str, Any] = {
        "seed": args.seed,
        "data_seed": args.data_seed,
        "threads": getattr(args, "threads", 0),  # the command line's --threads (dalle_core.__main__)
        "wrong_colour_share": args.wrong_colour_share,
        "vqgan_from": args.vqgan_from,
    }
    for name, field_name in (
        ("vqgan_steps", "vqgan_steps"),
        ("dalle_steps", "dalle_steps"),
        ("examples", "example_count"),
    ):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
            changes[field_name] = value
    return TrainSettings.quick(**changes) if args.quick else replace(TrainSettings(), **changes)


def check_out(out: str | Path, replace_shipped: bool) -> Path:
    """Refuse a folder inside the package's assets (the shipped course model) unless asked to replace it."""
    out = Path(out)
    assets = TINY_ROOT.parent.resolve()
    if out.resolve().is_relative_to(assets) and not replace_shipped:
        raise ValueError(
            f"--out {out} is inside {assets}, the shipped course model that every notebook loads; "
            f"pass {REPLACE_FLAG} to overwrite it, or choose another folder"
        )
    return out


def run_train(args: argparse.Namespace) -> int:
    out = check_out(args.out, args.replace_shipped)
    settings = settings_from_args(args)
    samples = None if args.samples_dir in ("", "none") else args.samples_dir
    train_course_model(settings, out, samples, progress=not args.quiet)
    return 0
