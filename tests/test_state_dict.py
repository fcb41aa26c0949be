"""Checkpoint compatibility: the same keys and shapes as min-dalle, for mega and mini."""
from __future__ import annotations

import pytest
import torch

from dalle_core import DalleBartDecoder, DalleBartEncoder, DalleConfig, VQGanDetokenizer
from dalle_core.weights import expected_module

from . import oracle

PARAMETERS = {"mega": (1_110_220_800, 1_477_746_688), "mini": (202_649_584, 235_313_136)}


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", ["mega", "mini"])
def test_keys_and_shapes(name):
    config = DalleConfig.from_name(name)
    with torch.device("meta"):
        pairs = [(DalleBartEncoder(config), oracle.encoder(config, "meta")),
                 (DalleBartDecoder(config), oracle.decoder(config, "meta"))]
    for ours, ref in pairs:
        assert shapes(ours) == shapes(ref)
    counts = tuple(sum(p.numel() for p in ours.parameters()) for ours, _ in pairs)
    assert counts == PARAMETERS[name]


def test_vqgan_keys_and_shapes():
    with torch.device("meta"):
        ours, ref = VQGanDetokenizer(), oracle.VQGanDetokenizer()
    assert shapes(ours) == shapes(ref)
    assert sum(p.numel() for p in ours.parameters()) == 46_709_891
    assert tuple(ours.embedding.weight.shape) == (16384, 256)


def test_expected_modules_are_on_the_meta_device_with_the_reference_parameter_counts():
    """The modules that loading, verify and convert check checkpoints against."""
    counts = {("encoder", "mega"): 1_110_220_800, ("decoder", "mega"): 1_477_746_688,
              ("encoder", "mini"): 202_649_584, ("decoder", "mini"): 235_313_136,
              ("detoker", "mini"): 46_709_891}
    for (role, model), expected in counts.items():
        module = expected_module(role, model)
        assert sum(p.numel() for p in module.parameters()) == expected
        assert all(p.device.type == "meta" for p in module.parameters())
    assert expected_module("encoder", DalleConfig.tiny()).embed_tokens.weight.shape == (271, 128)
    with pytest.raises(ValueError, match="unknown checkpoint"):
        expected_module("lm_head", "mini")
    with pytest.raises(ValueError, match="unknown model"):
        expected_module("detoker", "tiny")  # not DALL·E's VQGAN: the course model passes its sizes
