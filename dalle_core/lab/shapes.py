"""Every named tensor of one generation, with its shape, for any model size, in no memory.

The modules are built on PyTorch's meta device: tensors there have a shape and a dtype
but no storage, and every operation computes only the shape of its result. Running the
real pipeline code there (one decoder step, then the VQGAN) and recording the tensors it
names (`dalle_core.trace`) gives DALL·E Mega's shapes on a laptop in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import DalleConfig, VQGanConfig
from ..decoder import DalleBartDecoder
from ..encoder import DalleBartEncoder
from ..pipeline import MinDalle, check_grid_size, load_model_config
from ..trace import Record, recording
from ..vqgan import VQGanDetokenizer

# What each dimension means, for the printed table and the course.
NOTES = {
    "text_tokens": "row 0 the empty prompt [<s>, </s>, pad...], row 1 the prompt; pad id 1",
    "encoder_state": "one vector per text position, both rows encoded at once",
    "expanded_indices": "[0]*n + [1]*n: n unconditional rows, then n conditional",
    "text_tokens expanded": "2n rows",
    "encoder_state expanded": "2n rows",
    "attention_mask": "text_tokens != pad, broadcast over heads and queries",
    "attention_state": "(layers, 4n, slots, embed): per layer 2n key rows then 2n value rows",
    "image_tokens": "start token, then one column per step",
    "token_indices": "the loop runs over these positions",
    "prev_tokens": "last token of each image, fed to step i",
    "token_index": "position of step i",
    "prev_tokens repeated": "the same tokens for both halves of the batch",
    "decoder_state": "embed_tokens + embed_positions, layer-normed",
    "encoder self-attention weights": "(rows, heads, queries, keys): each text token over the text",
    "decoder self-attention weights": "the new token over all cache slots, later ones masked",
    "decoder cross-attention weights": "the new token over the 64 text positions",
    "logits": "lm_head: image_vocab_count + 1 outputs",
    "logits sliced": "only the codes the VQGAN can draw",
    "logits superconditioned": "uncond + s * (cond - uncond): back to n rows",
    "image_tokens[:, i + 1]": "one sampled token per image",
    "vqgan code vectors": "codebook rows, one per token",
    "vqgan mid": "after conv_in and the middle block",
    "vqgan conv_out": "RGB before clipping",
    "image grid": "g x g images side by side, floats 0..255",
}


@dataclass(frozen=True)
class TracedShapes:
    config: DalleConfig
    grid_size: int
    records: list[Record]

    def shape(self, name: str) -> tuple[int, ...]:
        for r in self.records:
            if r.name == name:
                return r.shape
        raise KeyError(f"no tensor named {name!r} was traced; known: {[r.name for r in self.records]}")

    def table(self) -> str:
        width = max(len(r.name) for r in self.records)
        shape_width = max(len(str(r.shape)) for r in self.records)
        lines = [f"{self.config.name}, grid {self.grid_size}x{self.grid_size} (n = {self.grid_size ** 2})"]
        for r in self.records:
            lines.append(f"{r.name:<{width}}  {str(r.shape):<{shape_width}}  {r.dtype:<8}  {NOTES.get(r.name, '')}".rstrip())
        return "\n".join(lines)


class _StandInTokenizer:
    """Shapes do not depend on which ids a prompt has, only how many; no vocab file needed."""

    def tokenize(self, text: str, is_verbose: bool = False) -> list[int]:
        return [0] + [4] * len(text.split()) + [2]

    def unreadable_words(self, text: str) -> list[str]:
        return []  # every word is one stand-in token


def meta_model(config: DalleConfig, vqgan_config: VQGanConfig | None = None) -> MinDalle:
    """A MinDalle whose modules live on the meta device: real code, no memory."""
    with torch.device("meta"):
        encoder = DalleBartEncoder(config).eval()
        decoder = DalleBartDecoder(config).eval()
        detokenizer = VQGanDetokenizer(vqgan_config).eval()
    return MinDalle.from_modules(_StandInTokenizer(), encoder, decoder, detokenizer)


def first_records(records: list[Record]) -> list[Record]:
    """Keep the first record of each name: the loop and the layers repeat them."""
    seen: set[str] = set()
    kept = []
    for r in records:
        if r.name not in seen:
            seen.add(r.name)
            kept.append(r)
    return kept


def trace_shapes(
    config: DalleConfig | str = "mega",
    grid_size: int = 4,
    vqgan_config: VQGanConfig | None = None,
    text: str = "a red circle",
) -> TracedShapes:
    """Run one decoder step and the VQGAN on the meta device; return every named shape."""
    if config == "tiny":
        config, vqgan_config = load_model_config()
    elif isinstance(config, str):
        config = DalleConfig.from_name(config)
    grid_size = check_grid_size(grid_size)
    model = meta_model(config, vqgan_config)
    with recording() as records:
        stream = model.image_token_stream(text, seed=1, grid_size=grid_size, every=1, progress=False)
        image_tokens = next(stream)  # one step is enough: every later step has the same shapes
        stream.close()
        model.image_grid_from_tokens(image_tokens[:, 1:], is_seamless=False)
    return TracedShapes(config, grid_size, first_records(records))
