"""Every named tensor of one generation, with its shape, for any model size, in no memory.

The modules are built on PyTorch's meta device: tensors there have a shape and a dtype
but no storage, and every operation computes only the shape of its result. Running the
real pipeline code there (one decoder step, then the VQGAN) and recording the tensors it
names (`dalle_core.trace`) gives DALL·E Mega's shapes on a laptop in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import DalleConfig, VQGanConfig, load_model_config
from ..decoder import DalleBartDecoder
from ..encoder import DalleBartEncoder
from ..pipeline import MinDalle
from ..trace import Record, recording
from ..vqgan import VQGanDetokenizer, check_grid_size

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
    "decoder self-attention weights": "min-dalle's form: all slots, later ones masked (a real step here: i + 1)",
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
            lines.append(
                f"{r.name:<{width}}  {r.shape!s:<{shape_width}}  {r.dtype:<8}  {NOTES.get(r.name, '')}".rstrip()
            )
        return "\n".join(lines)


class _StandInTokenizer:
    """Shapes do not depend on which ids a prompt has, only how many; no vocab file needed."""

    def tokenize(self, text: str, is_verbose: bool = False) -> list[int]:
        return [0] + [4] * len(text.split()) + [2]

    def unreadable_words(self, text: str) -> list[str]:
        return []  # every word is one stand-in token


def meta_model(config: DalleConfig, vqgan_config: VQGanConfig | None = None) -> MinDalle:
    """A MinDalle whose modules live on the meta device: real code, no memory. It runs in the
    pipeline's `shapes_only` mode: there is no free memory to check and no token value to read."""
    with torch.device("meta"):
        encoder = DalleBartEncoder(config).eval()
        decoder = DalleBartDecoder(config).eval()
        detokenizer = VQGanDetokenizer(vqgan_config).eval()
    model = MinDalle.from_modules(_StandInTokenizer(), encoder, decoder, detokenizer)
    model.shapes_only = True
    return model


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
    # One step is enough for every shape but one: the meta device cannot say how many cache
    # slots are written, so the decoder reads all of them, masked, as min-dalle does. A real
    # step reads only the written ones: at step i the decoder self-attention weights end in
    # i + 1, not in image_token_count (notebook 03).
    with recording() as records, model.decoder.fixed_length():
        stream = model.image_token_stream(text, seed=1, grid_size=grid_size, every=1, progress=False)
        image_tokens = next(stream)
        stream.close()
        model.image_grid_from_tokens(image_tokens[:, 1:], is_seamless=False)
    return TracedShapes(config, grid_size, first_records(records))


def min_dalle_step_shapes(config: DalleConfig | str = "mega", grid_size: int = 4) -> dict[str, tuple[int, ...]]:
    """Shapes inside min-dalle 0.4.11's own decoder step and draw, on the meta device.

    Runs min-dalle's `DalleBartDecoder.sample_tokens` (installed as the course's test oracle)
    and notes what some torch calls return: the two `repeat`s of its `forward` (token_index,
    then prev_tokens), the first attention-score `einsum` (self-attention over all slots) and
    the `sort` of the superconditioned logits. These are the tensors the walkthrough names that
    dalle_core never makes (it broadcasts token_index, and `topk` replaces the full sort).
    min-dalle fixes 256 image tokens per picture: Mega, Mini and the course model fit it.
    """
    from torch.overrides import TorchFunctionMode

    config = DalleConfig.from_name(config) if isinstance(config, str) else config
    if config.image_token_count != 256:
        raise ValueError(f"min-dalle's decoder has 256 image positions; {config.name} has {config.image_token_count}")
    n = check_grid_size(grid_size) ** 2
    grad, threads = torch.is_grad_enabled(), torch.get_num_threads()
    from min_dalle.models import DalleBartDecoder as MinDalleDecoder  # turns autograd off, sets threads

    torch.set_grad_enabled(grad)
    torch.set_num_threads(threads)
    calls: list[tuple[str, tuple[int, ...]]] = []

    class Spy(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", "")
            if name in ("repeat", "sort") or (name == "einsum" and args[0] == "bqhc,bkhc->bhqk"):
                calls.append((name, tuple((out[0] if name == "sort" else out).shape)))
            return out

    E, meta = config.embed_count, torch.device("meta")
    with meta:
        decoder = MinDalleDecoder(
            image_vocab_count=config.image_vocab_count,
            embed_count=E,
            attention_head_count=config.attention_head_count,
            glu_embed_count=config.glu_embed_count,
            layer_count=config.layer_count,
            device=meta,
        ).eval()
        settings = torch.tensor([1.0, 64, 16.0])
        inputs = dict(
            attention_mask=torch.ones(2 * n, 1, 1, config.text_token_count, dtype=torch.bool),
            encoder_state=torch.empty(2 * n, config.text_token_count, E),
            attention_state=torch.empty(config.layer_count, 4 * n, 256, E),
            prev_tokens=torch.zeros(n, 1, dtype=torch.long),
            token_index=torch.zeros(1, dtype=torch.long),
        )
    with torch.no_grad(), Spy():
        decoder.sample_tokens(settings, **inputs)
    repeats = [shape for name, shape in calls if name == "repeat"]
    scores = [shape for name, shape in calls if name == "einsum"]
    return {
        "token_index repeated": repeats[0],
        "prev_tokens repeated": repeats[1],
        "decoder self-attention weights": scores[0],
        "logits_sorted": next(shape for name, shape in calls if name == "sort"),
    }
