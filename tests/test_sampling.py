from __future__ import annotations

import math

import pytest
import torch

from dalle_core.sampling import (
    check_settings,
    entropy_bits,
    probabilities,
    sample_next_tokens,
    supercondition,
    top_k_mask,
)


def test_supercondition_blend():
    uncond, cond = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    logits = torch.cat([uncond, cond])
    torch.testing.assert_close(supercondition(logits, 1.0), cond)
    torch.testing.assert_close(supercondition(logits, 0.0), uncond)
    torch.testing.assert_close(supercondition(logits, 4.0), uncond + 4 * (cond - uncond))


def test_top_k_keeps_ties_and_max():
    logits = torch.tensor([[3.0, 1.0, 2.0, 2.0, 0.0]])
    is_kept, row_max = top_k_mask(logits, 2)
    assert is_kept.tolist() == [[True, False, True, True, False]]  # the tie at 2.0 keeps three
    assert row_max.item() == 3.0
    assert top_k_mask(logits, 100)[0].all()  # k above the vocabulary keeps everything


def test_probabilities_stable_and_temperature():
    logits = torch.tensor([[1000.0, 999.0, 0.0]])  # exp(1000) would overflow without the max shift
    probs = probabilities(logits, 1.0, 3)
    assert torch.isfinite(probs).all() and probs[0, 0] == 1.0
    hot, cold = probabilities(logits, 4.0, 3), probabilities(logits, 0.25, 3)
    assert entropy_bits(hot) > entropy_bits(probs) > entropy_bits(cold)


def test_entropy_uniform():
    assert math.isclose(entropy_bits(torch.ones(1, 8)).item(), 3.0, rel_tol=1e-6)


def test_top_k_one_is_greedy():
    logits = torch.randn(4, 50)
    tokens = sample_next_tokens(logits, temperature=1.0, top_k=1, supercondition_factor=3.0)
    assert torch.equal(tokens, supercondition(logits, 3.0).argmax(-1))


@pytest.mark.parametrize(
    "settings, error",
    [
        ((0.0, 256, 16.0), ValueError), ((-1.0, 256, 16.0), ValueError), ((float("nan"), 256, 16.0), ValueError),
        ((1.0, 0, 16.0), ValueError), ((1.0, 2.5, 16.0), TypeError), ((1.0, 256, float("nan")), ValueError),
        ((1.0, 256, float("inf")), ValueError), (("1", 256, 16.0), TypeError),
    ],
)
def test_bad_settings(settings, error):
    with pytest.raises(error):
        check_settings(*settings)
