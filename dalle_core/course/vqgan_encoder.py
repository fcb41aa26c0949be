"""The VQGAN's encoder half: pixels to one vector per token cell.

DALL·E only ever *decodes* (min-dalle ships no VQGAN encoder), but the course model has
to be trained as an autoencoder, so it needs the other half. This one mirrors the
detokenizer's decoder in reverse at the same `VQGanConfig` widths: `channel_counts[i]`
channels at level i, a stride-2 convolution between levels, so a 64x64 picture with
the course model's 3 levels (two stride-2 convolutions, factor 4) becomes a 16x16 grid of
`embed_count`-dim vectors for the quantizer, one per 4x4-pixel patch. It has no attention
blocks: at these sizes the convolutions already see the whole 4x4 patch and its
neighbours.
Its ResnetBlock is the detokenizer's own (`dalle_core.vqgan.ResnetBlock`).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import VQGanConfig
from ..vqgan import ResnetBlock, swish


class VQGanEncoder(nn.Module):
    """(B, 3, H, W) pixels in 0..1 -> (B, embed_count, H/f, W/f), f = config.downsample_factor."""

    def __init__(self, config: VQGanConfig):
        super().__init__()
        self.config = config
        counts, groups = config.channel_counts, config.group_count
        self.conv_in = nn.Conv2d(3, counts[0], 3, padding=1)
        levels = []
        count_in = counts[0]
        for i, count in enumerate(counts):
            layers: list[nn.Module] = []
            for _ in range(config.block_count):
                layers.append(ResnetBlock(count_in, count, groups))
                count_in = count
            if i < len(counts) - 1:  # halve the resolution between levels
                layers.append(nn.Conv2d(count, count, 3, stride=2, padding=1))
            levels.append(nn.Sequential(*layers))
        self.down = nn.ModuleList(levels)
        self.mid = ResnetBlock(count_in, count_in, groups)
        self.norm_out = nn.GroupNorm(groups, count_in)
        self.conv_out = nn.Conv2d(count_in, config.embed_count, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dim() != 4 or pixels.shape[1] != 3:
            raise ValueError(f"pixels must be (B, 3, H, W) in 0..1, got shape {tuple(pixels.shape)}")
        factor = self.config.downsample_factor
        if pixels.shape[2] % factor or pixels.shape[3] % factor:
            raise ValueError(f"image sides {tuple(pixels.shape[2:])} must be multiples of {factor}")
        h = self.conv_in(pixels * 2 - 1)  # centre the input around 0
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(swish(self.norm_out(h)))  # (B, E, H/f, W/f)
