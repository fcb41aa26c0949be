"""Draws the figures of docs/ from the code:

- docs/images/pipeline.png: the generation path with DALL·E Mega's shapes (4x4 grid);
- docs/images/architecture.png: the package's modules, which tensor flows between them,
  and the modules around the generation path (docs/architecture.md).

    .venv/bin/python docs/figures.py

The shapes are traced from the code (dalle_core.lab.shapes), not typed in. The PNGs are
deterministic for a given matplotlib version (no date or version in their metadata).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from dalle_core.lab.shapes import trace_shapes

IMAGES = Path(__file__).parent / "images"
PNG_METADATA = {"Software": None}  # no matplotlib version in the file: same code, same bytes


def box(ax, x, y, w, h, title, body="", colour="#ffffff", edge="#555555", style="round,pad=0.02", dashed=False):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, fc=colour, ec=edge,
                                linestyle="--" if dashed else "-", linewidth=1.0))
    if body:
        ax.text(x + w / 2, y + h - 0.16, title, ha="center", va="top", fontsize=9.5, weight="bold", family="monospace")
        ax.text(x + w / 2, y + h - 0.46, body, ha="center", va="top", fontsize=8, linespacing=1.25)
    else:
        ax.text(x + w / 2, y + h / 2, title, ha="center", va="center", fontsize=9.5, weight="bold", family="monospace")


def arrow(ax, start, end, label="", colour="#333333", dashed=False, label_offset=(0.0, 0.12), rad=0.0, fontsize=7.5):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(
        arrowstyle="-|>", color=colour, linewidth=1.1, linestyle="--" if dashed else "-",
        shrinkA=0, shrinkB=0, mutation_scale=11, connectionstyle=f"arc3,rad={rad}"))
    if label:
        x = (start[0] + end[0]) / 2 + label_offset[0]
        y = (start[1] + end[1]) / 2 + label_offset[1]
        ax.text(x, y, label, ha="center", va="bottom", fontsize=fontsize, family="monospace", color="#222222")


def architecture() -> Path:
    """Modules (boxes) and the tensors that flow between them, with DALL·E Mega's shapes, 4x4 grid."""
    t = trace_shapes("mega", 4)

    def s(name: str) -> str:
        return str(t.shape(name))

    blue, orange, green, grey, violet = "#dbe9f6", "#fde7d2", "#dff2df", "#f2f2f2", "#ece3f5"
    fig, ax = plt.subplots(figsize=(16, 9.6))
    ax.set_xlim(0, 16)
    ax.set_ylim(0, 9.6)
    ax.axis("off")

    # pipeline.py frames the generation path
    box(ax, 1.4, 4.75, 13.0, 4.15, "", colour="#fbfbfb", edge="#888888", style="round,pad=0.05", dashed=True)
    ax.text(1.55, 8.72, "pipeline.py  MinDalle: packs text_tokens, expands them to 2n rows, "
            "owns the cache, runs the loop", fontsize=9, va="top", family="monospace", color="#444444")

    y, h = 6.35, 1.55
    box(ax, 0.1, y + 0.3, 1.05, 0.9, "prompt", colour=grey)
    box(ax, 1.55, y, 1.8, h, "tokenizer.py", "TextTokenizer\nBPE: words to ids\n(min-dalle's ids)", blue)
    box(ax, 4.1, y, 1.9, h, "encoder.py", "DalleBartEncoder\n24 x (self-attention\n+ GLU), once per prompt", blue)
    box(ax, 7.3, y, 2.0, h, "decoder.py", "DalleBartDecoder\none token per image\nper step; uses the cache", orange)
    box(ax, 10.3, y, 1.7, h, "sampling.py", "supercondition,\ntop-k, temperature,\nmultinomial", orange)
    box(ax, 12.45, y, 1.7, h, "vqgan.py", "VQGanDetokenizer\ncodes to pixels\n16 -> 256 per side", green)
    box(ax, 14.6, y + 0.3, 1.3, 0.9, "image", colour=grey)

    mid = y + h / 2
    arrow(ax, (1.15, mid), (1.55, mid))
    arrow(ax, (3.35, mid), (4.1, mid), f"text_tokens\n{s('text_tokens')}", label_offset=(0, 0.08))
    arrow(
        ax,
        (6.0, mid),
        (7.3, mid),
        f"encoder_state\n{s('encoder_state')}\nexpanded to\n{s('encoder_state expanded')}",
        label_offset=(0, 0.08),
    )
    ax.text(
        6.65,
        mid - 0.12,
        f"attention_mask\n{s('attention_mask')}",
        ha="center",
        va="top",
        fontsize=7.5,
        family="monospace",
    )
    arrow(ax, (9.3, mid + 0.25), (10.3, mid + 0.25), f"logits\n{s('logits')}", label_offset=(0, 0.06), fontsize=7)
    arrow(ax, (10.3, mid - 0.35), (9.3, mid - 0.35), f"prev_tokens\n{s('prev_tokens')}", label_offset=(0, -0.62))
    arrow(ax, (12.0, mid), (12.45, mid))
    ax.text(
        12.2,
        y - 0.12,
        f"image_tokens\n{s('image_tokens')}\n(after 256 steps)",
        ha="center",
        va="top",
        fontsize=7.5,
        family="monospace",
    )
    arrow(ax, (14.15, mid), (14.6, mid))
    ax.text(15.25, y + 0.2, f"grid\n{s('image grid')}", ha="center", va="top", fontsize=7.5, family="monospace")

    # the cache lives in the pipeline and is read and written by the decoder at every step
    box(
        ax, 7.95, 4.95, 2.45, 0.95, "attention_state", f"{s('attention_state')}\nkey/value cache, 3 GiB float32", orange
    )
    arrow(ax, (8.75, 5.9), (8.75, y), colour="#b35900")
    arrow(ax, (9.1, y), (9.1, 5.9), colour="#b35900")
    ax.text(
        10.55, 5.42, "x 256 steps:\nstep i writes slot i,\nreads slots 0..i", fontsize=7.5, va="center", color="#b35900"
    )

    # modules around the path
    box(
        ax,
        4.45,
        2.75,
        5.2,
        1.25,
        "attention.py",
        "multi-head attention and GLU, shared by encoder and decoder;\n"
        "softmax(q k^T / sqrt(d) + mask bias) v, per head",
        violet,
    )
    arrow(ax, (5.3, 4.0), (5.3, y), colour="#7a5aa0", dashed=True)
    arrow(ax, (7.2, 4.0), (7.6, y), colour="#7a5aa0", dashed=True)
    box(
        ax,
        0.1,
        2.75,
        4.0,
        1.25,
        "config.py",
        "DalleConfig, VQGanConfig: the sizes;\npresets mega, mini, tiny (min-dalle's names)",
        grey,
    )
    arrow(ax, (2.6, 4.0), (2.6, 4.75), "sizes", colour="#555555", dashed=True, label_offset=(0.3, -0.05))
    box(
        ax,
        10.0,
        2.75,
        2.8,
        1.25,
        "weights.py  hub/fetch.py",
        "min-dalle's file layout;\nstrict loading; resumable,\nverified downloads",
        grey,
    )
    arrow(ax, (11.4, 4.0), (11.4, 4.75), "state dicts", colour="#555555", dashed=True, label_offset=(0.55, -0.05))
    box(
        ax,
        13.15,
        2.75,
        2.75,
        1.25,
        "trace.py  lab/shapes.py",
        "record(name, tensor) hooks;\nthe pipeline on the meta\ndevice: shapes, no memory",
        grey,
    )
    arrow(ax, (14.0, 4.0), (14.0, 4.75), "records", colour="#555555", dashed=True, label_offset=(0.45, -0.05))
    box(ax, 0.05, 4.75, 1.2, 1.1, "__main__.py", "generate,\nshapes, fetch,\ntrain, ...", grey)

    # the course model
    box(ax, 0.1, 0.1, 15.8, 2.3, "", colour="#fafff5", edge="#7aa36b", style="round,pad=0.03", dashed=True)
    ax.text(
        0.25,
        2.28,
        "course/, the course model: `python -m dalle_core train` (course/train.py) rebuilds assets/tiny/; "
        "course/evaluate.py and detect.py measure it",
        fontsize=9,
        va="top",
        family="monospace",
        color="#3d6b2f",
    )
    box(ax, 0.3, 0.3, 2.3, 1.5, "data.py", "captioned shapes,\ndrawn from a seed", green)
    box(ax, 3.2, 0.3, 2.3, 1.5, "bpe_train.py", "BPE merges:\nvocab.json, merges.txt", green)
    box(
        ax,
        6.1,
        0.3,
        3.0,
        1.5,
        "vqgan_encoder.py\nquantizer.py",
        "\n\nvqgan_train.py: pixels ->\n16x16 tokens -> pixels",
        green,
    )
    box(
        ax,
        9.7,
        0.3,
        2.6,
        1.5,
        "dalle_train.py",
        "teacher forcing,\ncaption dropout for the\nunconditional branch",
        green,
    )
    box(
        ax,
        12.9,
        0.3,
        2.8,
        1.5,
        "assets/tiny/",
        "same classes, small sizes:\nMinDalle() loads it\n(config.json + 5 files)",
        green,
    )
    for a, b in ((2.6, 3.2), (5.5, 6.1), (9.1, 9.7), (12.3, 12.9)):
        arrow(ax, (a, 1.05), (b, 1.05), colour="#3d6b2f")
    arrow(ax, (13.4, 1.8), (12.5, 2.75), "files", colour="#3d6b2f", dashed=True, label_offset=(0.35, -0.12))

    ax.set_title(
        "dalle_core: modules and data flow (shapes: DALL·E Mega, 4x4 grid, n = 16; traced by dalle_core.lab.shapes)",
        fontsize=11,
    )
    out = IMAGES / "architecture.png"
    fig.savefig(out, dpi=100, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(fig)
    return out


def pipeline() -> Path:
    t = trace_shapes("mega", 4)
    steps = [
        ("prompt", "'a red circle'", "#eeeeee"),
        ("tokenizer", f"text_tokens\n{t.shape('text_tokens')}", "#dbe9f6"),
        ("encoder", f"encoder_state\n{t.shape('encoder_state')}", "#dbe9f6"),
        ("expand x n", f"encoder_state\n{t.shape('encoder_state expanded')}", "#dbe9f6"),
        (
            "decoder step\nx 256",
            f"logits\n{t.shape('logits')}\nattention_state\n{t.shape('attention_state')}",
            "#fde7d2",
        ),
        (
            "sampling",
            f"supercondition\n{t.shape('logits superconditioned')}\nimage_tokens\n{t.shape('image_tokens')}",
            "#fde7d2",
        ),
        ("VQGAN", f"image grid\n{t.shape('image grid')}", "#dff2df"),
    ]
    fig, ax = plt.subplots(figsize=(14, 3.2))
    ax.set_xlim(0, len(steps) * 1.9)
    ax.set_ylim(-0.1, 2.1)
    ax.axis("off")
    for i, (title, shape, colour) in enumerate(steps):
        x = i * 1.9 + 0.1
        ax.add_patch(FancyBboxPatch((x, 0.9), 1.5, 1.1, boxstyle="round,pad=0.05", fc=colour, ec="#555555"))
        ax.text(x + 0.75, 1.45, title, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(x + 0.75, 0.78, shape, ha="center", va="top", fontsize=8, family="monospace")
        if i < len(steps) - 1:
            ax.annotate(
                "", xy=(x + 1.85, 1.45), xytext=(x + 1.58, 1.45), arrowprops=dict(arrowstyle="->", color="#333333")
            )
    ax.set_title("DALL·E Mega, 4x4 grid: the shapes traced by `python -m dalle_core shapes`", fontsize=11)
    out = IMAGES / "pipeline.png"
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def main() -> None:
    for draw in (pipeline, architecture):
        print(f"wrote {draw()}")


if __name__ == "__main__":
    main()
