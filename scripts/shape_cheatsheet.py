"""Write docs/shapes.md, the shape cheat sheet, from the code itself.

    .venv/bin/python scripts/shape_cheatsheet.py            # rewrite docs/shapes.md
    .venv/bin/python scripts/shape_cheatsheet.py --check    # exit 1 if docs/shapes.md is stale

Every shape in the page is traced by `dalle_core.lab.shapes.trace_shapes` on the meta device
(the real pipeline code, no memory), every parameter count comes from modules built on
the meta device, and every cache size from `dalle_core.memory.attention_state_bytes`.
Each row also carries a formula in the model's sizes (L, E, n, ...); the script evaluates
it for the model and refuses to write the page if the formula and the trace disagree, so
the formulas are checked too. tests/test_docs.py regenerates the page in memory and fails
when the committed file differs.
"""
from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from pathlib import Path

import torch

from dalle_core.config import DalleConfig, VQGanConfig, load_model_config
from dalle_core.decoder import DalleBartDecoder
from dalle_core.encoder import DalleBartEncoder
from dalle_core.lab.shapes import NOTES, TracedShapes, trace_shapes
from dalle_core.memory import attention_state_bytes
from dalle_core.vqgan import VQGanDetokenizer

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "shapes.md"
COMMAND = "python scripts/shape_cheatsheet.py"
GRID_SIZE = 4  # the original walkthrough's 4x4 grid: n = 16 images
MODELS = ("mega", "mini", "tiny")


LEGEND = [
    ("g", "grid side: the command's `--grid-size`"),
    ("n", "images drawn at once, g x g"),
    ("L", "layer_count (encoder and decoder each)"),
    ("H", "attention_head_count"),
    ("E", "embed_count, the width of every token vector"),
    ("F", "glu_embed_count, the GLU's inner width"),
    ("T", "text_token_count, text positions (prompt cut or padded to it)"),
    ("S", "image_token_count, image tokens per image (a s x s grid)"),
    ("s", "image tokens per side, sqrt(S)"),
    ("V", "lm_head outputs, image_vocab_count + 1"),
    ("K", "image_code_count, codes the VQGAN can draw"),
    ("D", "VQGAN code vector length (codebook width)"),
    ("C[i]", "VQGAN channels at level i (the widest level is where tokens enter)"),
    ("P", "pixels per image side, s x 2^(levels - 1)"),
]


def configs(name: str) -> tuple[DalleConfig, VQGanConfig]:
    if name == "tiny":
        return load_model_config()
    return DalleConfig.from_name(name), VQGanConfig.dalle()


def symbols(config: DalleConfig, vqgan: VQGanConfig, grid_size: int) -> dict[str, object]:
    side = config.image_token_side
    return {
        "g": grid_size, "n": grid_size**2, "L": config.layer_count, "H": config.attention_head_count,
        "E": config.embed_count, "F": config.glu_embed_count, "T": config.text_token_count,
        "S": config.image_token_count, "s": side, "V": config.image_vocab_count + 1,
        "K": config.image_code_count, "D": vqgan.embed_count, "C": list(vqgan.channel_counts),
        "P": side * vqgan.downsample_factor,
    }


def formula(name: str, vqgan: VQGanConfig) -> tuple[str, ...] | None:
    """The shape of `name` in the model's sizes; None if the row has no formula."""
    top = len(vqgan.channel_counts) - 1
    fixed = {
        "text_tokens": ("2", "T"),
        "encoder self-attention weights": ("2", "H", "T", "T"),
        "encoder_state": ("2", "T", "E"),
        "expanded_indices": ("2n",),
        "text_tokens expanded": ("2n", "T"),
        "encoder_state expanded": ("2n", "T", "E"),
        "attention_mask": ("2n", "1", "1", "T"),
        "attention_state": ("L", "4n", "S", "E"),
        "image_tokens": ("n", "S+1"),
        "token_indices": ("S",),
        "prev_tokens": ("n", "1"),
        "token_index": ("1",),
        "prev_tokens repeated": ("2n", "1"),
        "decoder_state": ("2n", "1", "E"),
        "decoder self-attention weights": ("2n", "H", "1", "S"),
        "decoder cross-attention weights": ("2n", "H", "1", "T"),
        "logits": ("2n", "1", "V"),
        "logits sliced": ("2n", "K"),
        "logits superconditioned": ("n", "K"),
        "image_tokens[:, i + 1]": ("n",),
        "vqgan code vectors": ("n", "s", "s", "D"),
        "vqgan mid": ("n", f"C[{top}]", "s", "s"),
        "vqgan conv_out": ("n", "3", "P", "P"),
        "image grid": ("gP", "gP", "3"),
    }
    if name in fixed:
        return fixed[name]
    match = re.fullmatch(r"vqgan up\[(\d+)\]", name)
    if match:
        i = int(match.group(1))
        side = "P" if i <= 1 else f"P/{2 ** (i - 1)}"
        return ("n", f"C[{i}]", side, side)
    return None


def evaluate(term: str, values: dict[str, object]) -> int:
    """'4n' -> 4 * n, 'gP' -> g * P, 'P/8' -> P // 8, 'C[3]' -> C[3]."""
    expression = re.sub(r"(?<=[0-9A-Za-z\]])(?=[A-Za-z])", "*", term).replace("/", "//")
    return int(eval(expression, {"__builtins__": {}}, values))


def show(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def show_formula(terms: tuple[str, ...]) -> str:
    return "(" + ", ".join(terms) + ("," if len(terms) == 1 else "") + ")"


def size(shape: tuple[int, ...], dtype: str) -> str:
    if dtype == "list" or not shape:
        return ""
    element = torch.empty((), dtype=getattr(torch, dtype)).element_size()
    return human(math.prod(shape) * element)


def human(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def parameter_count(module_class: type, config: object) -> int:
    with torch.device("meta"):  # no memory: only the shapes of the weights
        module = module_class(config)
    return sum(p.numel() for p in module.parameters())


def level_note(i: int, vqgan: VQGanConfig) -> str:
    """What `vqgan up[i]` did (dalle_core.lab.shapes.NOTES leaves the levels blank)."""
    blocks = f"{vqgan.block_count} ResnetBlock" + ("s" if vqgan.block_count > 1 else "")
    if i in vqgan.attention_levels:
        blocks += " each followed by self-attention"
    return blocks + (", then nearest x2 and a 3x3 conv" if i > 0 else "; no upsampling: the pixel resolution")


def markdown_text(text: str) -> str:
    """Notes hold `<s>`, `[0]*n` and the like: keep Markdown from reading them as tags or emphasis."""
    return text.replace("<", "&lt;").replace("*", "\\*").replace("|", "\\|")


def shape_rows(traced: TracedShapes, vqgan: VQGanConfig) -> list[str]:
    values = symbols(traced.config, vqgan, traced.grid_size)
    lines = ["| tensor | shape | in sizes | dtype | bytes | what it is |", "|---|---|---|---|---:|---|"]
    for r in traced.records:
        terms = formula(r.name, vqgan)
        if terms is not None:
            expected = tuple(evaluate(t, values) for t in terms)
            if expected != r.shape:
                raise AssertionError(
                    f"{traced.config.name}: {r.name} is traced as {r.shape}, but its formula "
                    f"{show_formula(terms)} gives {expected}; fix the formula in {Path(__file__).name}"
                )
        up = re.fullmatch(r"vqgan up\[(\d+)\]", r.name)
        note = NOTES.get(r.name) or (level_note(int(up.group(1)), vqgan) if up else "")
        lines.append(
            f"| `{r.name}` | `{show(r.shape)}` | {show_formula(terms) if terms else ''} | {r.dtype} "
            f"| {size(r.shape, r.dtype)} | {markdown_text(note)} |"
        )
    return lines


def render() -> str:
    models = {name: configs(name) for name in MODELS}
    out = [
        "# Shape cheat sheet",
        "",
        f"<!-- generated by `{COMMAND}` from dalle_core; do not edit by hand -->",
        "",
        "Every named tensor of one generation, for DALL·E Mega, DALL·E Mini and the course",
        f"model (`tiny`), at the walkthrough's {GRID_SIZE}x{GRID_SIZE} grid (n = {GRID_SIZE**2} images). "
        "The shapes are",
        "traced by running the real pipeline code on PyTorch's meta device (`dalle_core.lab.shapes`),",
        "so they cost no memory and cannot drift from the code: `tests/test_docs.py` regenerates",
        f"this page and fails if it differs. After changing the code, run `{COMMAND}`.",
        "",
        "To see the same table for any grid: `python -m dalle_core shapes --model mega --grid-size 3`.",
        "",
        "## How to read a shape",
        "",
        "- The batch is **2n rows**, not n: rows `[:n]` are the unconditional branch (the empty",
        "  prompt), rows `[n:]` the conditional one (the prompt). Super-conditioning merges them",
        "  back to n rows: `uncond + s * (cond - uncond)`.",
        "- `attention_state` is the decoder's key/value cache. Its **4n** rows per layer are",
        "  2 (unconditional, conditional) x 2 (keys, values) x n images: rows `[:2n]` keys,",
        "  `[2n:]` values. With n = 16 that is the walkthrough's 64 = 2 x 2 x 16.",
        "- One decoder step sees **one token per image** (`prev_tokens (n, 1)`) and returns the",
        "  logits for the next; the loop runs S times. Only the cache grows in meaning (slot i is",
        "  written at step i); no shape changes from step to step.",
        "- `logits` has **V = image_vocab_count + 1** columns (the decoder's extra start row);",
        "  only the first K are codes the VQGAN can draw, so the sampler slices to K.",
        "- The **bytes** column is the tensor's size as traced (float32, int64 ids). The",
        "  VQGAN's late levels are the largest transient activations of a generation.",
        "",
        "Symbols in the *in sizes* column (each checked against the trace when this page is written):",
        "",
        "| symbol | meaning | " + " | ".join(MODELS) + " |",
        "|---|---|" + "---:|" * len(MODELS),
    ]
    values = {name: symbols(config, vqgan, GRID_SIZE) for name, (config, vqgan) in models.items()}
    for symbol, meaning in LEGEND:
        key = symbol.split("[")[0]
        cells = [str(values[m][key]).replace("[", "").replace("]", "") for m in MODELS]
        out.append(f"| {symbol} | {meaning} | " + " | ".join(cells) + " |")
    out += [
        "",
        "## Memory the shapes imply",
        "",
        "Parameters counted from modules built on the meta device; bytes are parameters x 4",
        "(float32) or x 2 (float16 / bfloat16). The VQGAN always runs in float32.",
        "",
        "| model | encoder parameters | decoder parameters | VQGAN parameters | encoder + decoder float32 | float16 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, (config, vqgan) in models.items():
        encoder = parameter_count(DalleBartEncoder, config)
        decoder = parameter_count(DalleBartDecoder, config)
        detokenizer = parameter_count(VQGanDetokenizer, vqgan)
        both = encoder + decoder
        out.append(f"| {name} | {encoder:,} | {decoder:,} | {detokenizer:,} | {human(4 * both)} | {human(2 * both)} |")
    out += [
        "",
        "The key/value cache `attention_state` (L x 4n x S x E elements) for common grids,",
        "from `dalle_core.memory.attention_state_bytes`; `MinDalle(..., attention_state_dtype=torch.float16)`",
        "halves it:",
        "",
        "| model | cache dtype | 1x1 (n = 1) | 2x2 (n = 4) | 3x3 (n = 9) | 4x4 (n = 16) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, (config, _) in models.items():
        for dtype in (torch.float32, torch.float16):
            cells = [human(attention_state_bytes(config, g * g, dtype)) for g in (1, 2, 3, 4)]
            out.append(f"| {name} | {str(dtype).replace('torch.', '')} | " + " | ".join(cells) + " |")
    for name, (_, vqgan) in models.items():
        traced = trace_shapes(name, GRID_SIZE)
        out += [
            "",
            f"## {name}: {traced.config.layer_count} layers, E = {traced.config.embed_count}, "
            f"grid {GRID_SIZE}x{GRID_SIZE}",
            "",
            *shape_rows(traced, vqgan),
        ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if docs/shapes.md is stale")
    parser.add_argument("--out", default=str(TARGET), help="where to write (default: docs/shapes.md)")
    args = parser.parse_args(argv)
    text = render()
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current == text:
            print(f"{out} is up to date")
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(current.splitlines(True), text.splitlines(True), str(out), "generated")
        )
        print(f"{out} is stale: run `{COMMAND}`", file=sys.stderr)
        return 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
