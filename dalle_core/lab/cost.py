"""What one decoder step costs: bytes read and floating-point operations, counted.

A step pushes one token of each of the 2n rows through every decoder layer. Each weight
matrix is read once and used for 2n rows, 2 FLOPs (a multiply and an add) per weight per
row, so a step does about 2 x 2n FLOPs per weight read: far below what a CPU or GPU can
compute per byte it loads. Such a step is *memory-bound*; its time is about bytes / memory
bandwidth. The counts below make that concrete; notebook 08 turns them into a roofline.

Only the terms that grow with the model are counted: weight matrices, the key/value
cache, the cross-attention keys/values and the attention products. LayerNorms, softmax
and the embedding rows add well under 1%.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..config import DalleConfig


@dataclass(frozen=True)
class StepCost:
    """Bytes and FLOPs of one decoder step (all 2n rows, one token each)."""

    weight_bytes: int  # weight matrices read (each once)
    cache_bytes: int  # self-attention keys/values read and the new slot written
    cross_bytes: int  # cross-attention keys/values read, stored at the cache's dtype (0 when recomputed: see flops)
    flops: int

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.cache_bytes + self.cross_bytes

    @property
    def intensity(self) -> float:
        """FLOPs per byte read: compare with the machine's FLOP/s divided by its bytes/s."""
        return self.flops / self.total_bytes


def _element_size(dtype: torch.dtype) -> int:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    return torch.empty((), dtype=dtype).element_size()


def token_weight_count(config: DalleConfig) -> int:
    """Weights one token passes through in the decoder, cross-attention k_proj/v_proj left out:
    per layer self-attention q, k, v, out, cross-attention q, out and the GLU's fc0, fc1, fc2;
    then lm_head."""
    E, G = config.embed_count, config.glu_embed_count
    return config.layer_count * (6 * E * E + 3 * E * G) + (config.image_vocab_count + 1) * E


def decoder_step_cost(
    config: DalleConfig,
    image_count: int,
    token_index: int,
    dtype: torch.dtype = torch.float32,
    attention_state_dtype: torch.dtype | None = None,
    cross_attention_cached: bool = True,
    attend_all_slots: bool = False,
) -> StepCost:
    """Cost of decoding position `token_index` (0-based) for n = `image_count` images.

    `cross_attention_cached=False, attend_all_slots=True` is min-dalle's step: it projects
    `encoder_state` to keys and values in every layer at every step, and attends over all
    cache slots with the future masked. dalle_core does neither (decoder.py).
    """
    if not isinstance(config, DalleConfig):
        raise TypeError(f"config must be a DalleConfig, got {type(config).__name__}")
    if not isinstance(image_count, int) or image_count < 1:
        raise ValueError(f"image_count must be a positive int, got {image_count!r}")
    if not isinstance(token_index, int) or not 0 <= token_index < config.image_token_count:
        raise ValueError(f"token_index must be an int in 0..{config.image_token_count - 1}, got {token_index!r}")
    weight_size = _element_size(dtype)
    cache_size = _element_size(attention_state_dtype or dtype)
    E, L = config.embed_count, config.layer_count
    rows, text = 2 * image_count, config.text_token_count  # 2n rows; 64 text positions
    keys = config.image_token_count if attend_all_slots else token_index + 1

    weights = token_weight_count(config)
    flops = 2 * rows * weights  # every weight: one multiply-add per row
    flops += L * 2 * (2 * rows * keys * E)  # self-attention: q k^T and weights v, all heads
    flops += L * 2 * (2 * rows * text * E)  # cross-attention over the 64 text positions
    if not cross_attention_cached:
        weights += L * 2 * E * E  # cross-attention k_proj and v_proj, read at every step too
        flops += L * 2 * (2 * rows * text * E * E)  # ... applied to the (2n, 64, E) encoder_state
    cache = L * 2 * rows * (keys + 1) * E * cache_size  # read `keys` slots of keys and values, write one
    # the pipeline stores them beside the cache, at its dtype (pipeline.image_token_stream)
    cross = L * 2 * rows * text * E * cache_size if cross_attention_cached else 0
    return StepCost(weight_bytes=weights * weight_size, cache_bytes=cache, cross_bytes=cross, flops=flops)


def generation_cost(config: DalleConfig, image_count: int, **options) -> StepCost:
    """All `image_token_count` steps of one generation, summed (options as `decoder_step_cost`)."""
    steps = [decoder_step_cost(config, image_count, i, **options) for i in range(config.image_token_count)]
    return StepCost(*(sum(getattr(s, f.name) for s in steps) for f in fields(StepCost)))


def recomputed_generation_flops(config: DalleConfig, image_count: int, token_count: int | None = None) -> int:
    """FLOPs of generating the first `token_count` tokens (default: all) without a cache:
    step i pushes all i + 1 tokens through every layer."""
    E, L = config.embed_count, config.layer_count
    rows, text = 2 * image_count, config.text_token_count
    per_token = 2 * rows * token_weight_count(config)
    total = 0
    for i in range(config.image_token_count if token_count is None else token_count):
        tokens = i + 1
        total += tokens * per_token  # only the last token's logits are needed, but every layer needs all tokens
        total += L * 2 * (2 * rows * tokens * tokens * E)  # causal self-attention among the tokens (counted square)
        total += L * 2 * (2 * rows * tokens * text * E)
        total += L * 2 * (2 * rows * text * E * E)  # each pass projects encoder_state to keys and values again
    return total
