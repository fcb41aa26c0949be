"""Checks a learner runs on their own answer, in the spirit of makemore's `cmp()`.

Every exercise in the course is followed by a check cell that calls one of these on the
learner's answer and a reference the package computes. A check prints one line when the
answer holds and raises `AssertionError` with a hint when it does not, so the learner
knows at once whether to move on. The printed lines hold no machine-dependent digits:
strict nbval compares them.

An exercise leaves its answer as `...` (Ellipsis) until the learner writes it: the checks
then say "not answered yet" instead of failing, so the course notebooks run top to bottom,
and the same check cells run on the filled-in answers in `notebooks/solutions/`.

Two kinds of check keep the answer out of sight. A build exercise (the learner writes a
piece of the model) is checked with `cmp` against the package's own function, run on the
same tensors. A predict-then-measure exercise is checked with `check_answer` against a
fingerprint of the right answer (`answer_digest`), so the check cell does not print it.

The checks return None, so a check cell shows its printed line and no `Out[...]` value
(a trailing `;` would hide one in Jupyter, but not when nbval re-runs the cell).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.as_tensor(np.asarray(value))


def cmp(
    name: str, mine: Any, reference: Any, atol: float = 1e-5, rtol: float = 1e-4, show_exact: bool = True
) -> None:
    """makemore's check: is `mine` exactly, or approximately, the reference? Prints one line
    and raises with the largest difference when neither holds.

    `show_exact=False` where bit-exactness depends on the CPU's code path (for example two
    sums of the same numbers in a different order): the line then reports only the
    approximate match, so a notebook's stored output holds on any machine."""
    if mine is ...:
        print(f"{name}: not answered yet (replace the ... above with your answer, then run this cell)")
        return
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
    if show_exact:
        print(f"{name:<32} exact: {exact!s:<5} | approximate: {approx}")
    else:
        print(f"{name:<32} approximate: {approx} (bit-exactness varies by machine)")


def check(answer: Any, test: Callable[[Any], bool], claim: str, hint: str = "") -> None:
    """Assert a claim about an answer: `test(answer)` must hold. Prints the claim when it
    does, raises with `hint` when it does not, says "not answered yet" for `...`."""
    if answer is ...:
        print(f"not answered yet: {claim} (replace the ... above with your answer, then run this cell)")
        return
    if not test(answer):
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


def _canonical(value: Any, decimals: int | None) -> str:
    """One spelling per answer: numbers rounded to `decimals`, text lower-cased and stripped,
    sequences element by element, so that 3, 3.0 and numpy's 3 share a fingerprint."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = round(float(value), decimals) if decimals is not None else float(value)
        return str(int(number)) if number == int(number) else repr(number)
    if isinstance(value, str):
        return " ".join(value.lower().split())
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_canonical(v, decimals) for v in value) + ")"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(_canonical(v, decimals) for v in value)) + "}"
    raise TypeError(f"an answer must be a number, a string, a bool or a sequence of them, got {type(value).__name__}")


def answer_digest(value: Any, decimals: int | None = None) -> str:
    """The fingerprint `check_answer` compares with: an exercise stores this, not the answer."""
    return hashlib.sha256(_canonical(value, decimals).encode()).hexdigest()[:16]


def check_answer(name: str, answer: Any, expected_digest: str, decimals: int | None = None, hint: str = "") -> None:
    """Is `answer` the right one? Compared by fingerprint (`answer_digest`), so the check cell
    never shows the answer; `decimals` rounds numbers first (give the answer to that many)."""
    if answer is ...:
        print(f"{name}: not answered yet (replace the ... above with your answer, then run this cell)")
        return
    if answer_digest(answer, decimals) != expected_digest:
        raise AssertionError(f"{name}: not yet" + (f". Hint: {hint}" if hint else ""))
    print(f"{name}: right")
