"""Draws docs/images/pipeline.png, the generation path with DALL·E Mega's shapes (4x4 grid).

The shapes are traced from the code (dalle_core.shapes), not typed in.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from dalle_core.shapes import trace_shapes  # noqa: E402


def main() -> None:
    t = trace_shapes("mega", 4)
    steps = [
        ("prompt", "'a red circle'", "#eeeeee"),
        ("tokenizer", f"text_tokens\n{t.shape('text_tokens')}", "#dbe9f6"),
        ("encoder", f"encoder_state\n{t.shape('encoder_state')}", "#dbe9f6"),
        ("expand x n", f"encoder_state\n{t.shape('encoder_state expanded')}", "#dbe9f6"),
        ("decoder step\nx 256", f"logits\n{t.shape('logits')}\nattention_state\n{t.shape('attention_state')}", "#fde7d2"),
        ("sampling", f"supercondition\n{t.shape('logits superconditioned')}\nimage_tokens\n{t.shape('image_tokens')}", "#fde7d2"),
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
            ax.annotate("", xy=(x + 1.85, 1.45), xytext=(x + 1.58, 1.45), arrowprops=dict(arrowstyle="->", color="#333333"))
    ax.set_title("DALL·E Mega, 4x4 grid: the shapes traced by `python -m dalle_core shapes`", fontsize=11)
    out = Path(__file__).parent / "images" / "pipeline.png"
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
