"""Checkpoint compatibility: the same keys and shapes as min-dalle, for mega and mini."""
from __future__ import annotations

import pytest
import torch

from dalle_core import DalleBartDecoder, DalleBartEncoder, DalleConfig, VQGanDetokenizer

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
