"""The learning-rate schedule of both course trainers (VQGAN and transformer).

Linear warm-up from near zero, so that Adam's first, noisy moment estimates take small
steps, then a cosine decay to 5 % of the peak, so that the last steps settle.
"""
from __future__ import annotations

import math

import torch


def cosine_lr(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 5% of the peak at `steps`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, step: int, steps: int, peak: float, max_warmup: int) -> None:
    """The rate of `step` for every parameter group; the warm-up is a tenth of the steps, at most `max_warmup`."""
    learning_rate = cosine_lr(step, steps, peak, warmup=min(max_warmup, steps // 10 + 1))
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
