"""From logits to one token per image, in min-dalle's order, as small pure functions.

    logits (2n, codes) --supercondition--> (n, codes) --top-k--> kept
        --minus row max--> --/ temperature--> --exp--> --zero the dropped--> multinomial

Each step is its own function so the course can run them one by one and plot between.
The composition is arithmetic-for-arithmetic min-dalle's, so the same seed draws the
same tokens.
"""
from __future__ import annotations

import math
import operator
from typing import Any

import torch

from .trace import record


def check_settings(temperature: float, top_k: int, supercondition_factor: float) -> None:
    """Reject settings that would silently give garbage (nan, division by zero, empty top-k)."""
    for name, value in (("temperature", temperature), ("supercondition_factor", supercondition_factor)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if temperature <= 0:
        raise ValueError(
            f"temperature must be positive, got {temperature}; use a small value such as 0.1 for near-greedy sampling"
        )
    if isinstance(top_k, bool) or (
        not isinstance(top_k, int) and not (isinstance(top_k, float) and top_k.is_integer())
    ):
        raise TypeError(f"top_k must be an integer, got {top_k!r}")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")


def check_seed(seed: Any) -> int:
    """The seed as an int; a value <= 0 asks for a random seed, as in min-dalle."""
    if isinstance(seed, bool):
        raise TypeError("seed must be an integer, got a bool")
    try:
        return operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an integer (a value <= 0 means a random seed), got {seed!r}") from None


def supercondition(logits: torch.Tensor, supercondition_factor: float | torch.Tensor) -> torch.Tensor:
    """(2n, V) -> (n, V): uncond * (1 - s) + cond * s, i.e. uncond + s * (cond - uncond).

    s = 1 is the plain conditional model; s > 1 moves *further* from what an empty prompt
    would give, so the image follows the text more (classifier-free guidance).
    """
    image_count = logits.shape[0] // 2
    s = torch.as_tensor(
        supercondition_factor, dtype=torch.float32, device=logits.device
    )  # a 0-dim tensor passes through
    return logits[:image_count] * (1 - s) + logits[image_count:] * s  # first n rows unconditional


def top_k_mask(logits: torch.Tensor, top_k: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(is_kept, row_max): keep logits >= the k-th largest (ties can keep a few more).

    `torch.topk` finds the k-th value without sorting all 16384 logits. A tensor k (the
    input of a captured CUDA graph, where no shape may depend on k) sorts instead and reads
    the k-th column: the same values, so the same kept set.
    """
    if isinstance(top_k, torch.Tensor):
        sorted_logits = logits.sort(dim=-1, descending=True).values  # (n, V)
        kth = (top_k.clamp(1, logits.shape[-1]) - 1).reshape(1, 1).expand(logits.shape[0], 1)  # (n, 1) column index
        return logits >= sorted_logits.gather(-1, kth), sorted_logits[:, :1]
    top_k = min(top_k, logits.shape[-1])
    top_values = logits.topk(top_k, dim=-1).values  # (n, k), descending
    is_kept = logits >= top_values[:, [-1]]
    return is_kept, top_values[:, [0]]


def probabilities(logits: torch.Tensor, temperature: float | torch.Tensor, top_k: int | torch.Tensor) -> torch.Tensor:
    """Unnormalised probabilities exp((logit - max) / temperature), zero outside the top k.

    Subtracting the row max first keeps exp() in [0, 1]: exp(90) already overflows
    float16 and exp(89) float32, while softmax is unchanged by a constant shift.
    """
    is_kept, row_max = top_k_mask(logits, top_k)
    t = torch.as_tensor(temperature, dtype=torch.float32, device=logits.device)
    scaled = (logits - row_max) / t
    return scaled.exp() * is_kept.to(torch.float32)


def sample_next_tokens(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 256,
    supercondition_factor: float = 16.0,
) -> torch.Tensor:
    """(2n, codes) logits of the unconditional and conditional rows -> (n,) next tokens.

    Runs at every step: the settings were checked once, by `check_settings`, where the
    generation was asked for (`MinDalle.image_token_stream`, `course.batch_generation`)."""
    logits = logits.to(torch.float32)  # blend and sample in float32 whatever the model's dtype
    record("logits sliced", logits)
    logits = supercondition(logits, supercondition_factor)
    record("logits superconditioned", logits)
    probs = probabilities(logits, temperature, int(top_k))
    image_tokens = torch.multinomial(probs, 1)[:, 0]  # one draw per image
    record("image_tokens[:, i + 1]", image_tokens)
    return image_tokens


def draw_once(probs: torch.Tensor) -> torch.Tensor:
    """(n, V) unnormalised probabilities -> (n,) one index per row, as `torch.multinomial(probs, 1)`.

    For one draw torch itself computes argmax(p / q) with q ~ Exponential(1) (the
    exponential race: the winner is index j with probability p_j / sum p), after checking
    the rows, a read on the host in some torch versions. Spelled out without that check,
    the same random numbers give the same tokens, and nothing waits for the host, so a CUDA
    graph can capture it (tested against torch.multinomial).
    """
    return (probs / torch.empty_like(probs).exponential_(1)).argmax(dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each row of (possibly unnormalised) probabilities."""
    p = probs / probs.sum(-1, keepdim=True)
    return -(p * torch.log2(p.clamp_min(1e-30))).sum(-1)
