"""Checks a learner runs on their own answer, in the spirit of makemore's `cmp()`.

Every exercise in the course is followed by a check cell that calls one of these on the
learner's answer and a reference the package computes. A check prints one line when the
answer holds and raises `AssertionError` with a hint when it does not, so the learner
knows at once whether to move on. The printed lines hold no machine-dependent digits:
strict nbval compares them.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.as_tensor(np.asarray(value))


def cmp(name: str, mine: Any, reference: Any, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """makemore's check: is `mine` exactly, or approximately, the reference? Prints one line
    and raises with the largest difference when neither holds."""
    a, b = _as_tensor(mine), _as_tensor(reference)
    if a.shape != b.shape:
        raise AssertionError(f"{name}: your shape {tuple(a.shape)}, expected {tuple(b.shape)}")
    exact = bool(torch.equal(a, b))
    a64, b64 = a.double(), b.double()
    approx = exact or bool(torch.allclose(a64, b64, atol=atol, rtol=rtol))
    if not approx:
        diff = (a64 - b64).abs().max().item()
        raise AssertionError(f"{name}: not equal to the reference (largest difference {diff:.3g}); "
                             "compare your steps with the cell above")
    print(f"{name:<32} exact: {str(exact):<5} | approximate: {approx}")
    return exact


def check(condition: bool, claim: str, hint: str = "") -> None:
    """Assert a claim about an answer; print it when it holds, raise with `hint` when not."""
    if not condition:
        raise AssertionError(f"not yet: {claim}" + (f". Hint: {hint}" if hint else ""))
    print(f"ok: {claim}")


def digest(value: Any, length: int = 12) -> str:
    """A short fingerprint of integer data (image tokens, detector read-outs): a changed
    picture changes it, so a notebook that prints it fails strict nbval when it should."""
    array = np.ascontiguousarray(_as_tensor(value).numpy())
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError("digest() takes integer data (tokens or labels); round floats first")
    data = array.astype(np.int64).tobytes() + repr(array.shape).encode()
    return hashlib.sha256(data).hexdigest()[:length]
