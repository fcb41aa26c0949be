"""VQGanDetokenizer: image tokens back to pixels.

Each token indexes a row of the codebook (`embedding`, 16384 x 256 for DALL·E). The
(n, 16, 16) grid of code vectors is a tiny 256-channel image; the decoder turns it into
(n, 256, 256, 3) pixels through a middle block and 5 levels, 4 of which double the
resolution (16 -> 32 -> 64 -> 128 -> 256). `VQGanDetokenizer()` is DALL·E's VQGAN with
min-dalle's state-dict keys; the course model uses the same class at smaller widths.
"""
from __future__ import annotations

import operator
from typing import Any

import torch
from torch import nn

from .config import VQGanConfig
from .trace import record


def _in_place_ok(x: torch.Tensor) -> bool:
    # in place saves a full-size copy of the largest activations (128 x 256 x 256 per
    # image), but autograd needs the originals when training
    return not (torch.is_grad_enabled() and x.requires_grad)


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x)."""
    return x.mul_(torch.sigmoid(x)) if _in_place_ok(x) else x * torch.sigmoid(x)


def residual(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """x + h, written into h (a fresh convolution output) when that is safe."""
    return h.add_(x) if _in_place_ok(h) else x + h


class ResnetBlock(nn.Module):
    """GroupNorm -> swish -> conv, twice, plus a shortcut (1x1 convolution when widths differ)."""

    def __init__(self, count_in: int, count_out: int, group_count: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(group_count, count_in)
        self.conv1 = nn.Conv2d(count_in, count_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(group_count, count_out)
        self.conv2 = nn.Conv2d(count_out, count_out, 3, padding=1)
        # a 1x1 convolution matches channel counts for the residual when they change
        self.nin_shortcut = nn.Conv2d(count_in, count_out, 1) if count_in != count_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one statement per step, so each input is freed as soon as its output exists:
        # `h = conv2(swish(norm2(h)))` would keep the old h alive through conv2
        h = swish(self.norm1(x))
        h = self.conv1(h)
        h = swish(self.norm2(h))
        h = self.conv2(h)
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return residual(x, h)


class AttentionBlock(nn.Module):
    """Single-head self-attention among all positions of a feature map."""

    def __init__(self, channel_count: int, group_count: int):
        super().__init__()
        self.norm = nn.GroupNorm(group_count, channel_count)
        self.q = nn.Conv2d(channel_count, channel_count, 1)
        self.k = nn.Conv2d(channel_count, channel_count, 1)
        self.v = nn.Conv2d(channel_count, channel_count, 1)
        self.proj_out = nn.Conv2d(channel_count, channel_count, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_count, channel_count, height, width = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(batch_count, channel_count, height * width)  # (B, C, P): P positions
        k = self.k(h).reshape(batch_count, channel_count, height * width)  # (B, C, P)
        v = self.v(h).reshape(batch_count, channel_count, height * width)  # (B, C, P)
        weights = torch.einsum("bcq,bck->bqk", q, k) / channel_count**0.5  # (B, P, P)
        weights = torch.softmax(weights, dim=2)
        h = torch.einsum("bck,bqk->bcq", v, weights)  # (B, C, P)
        h = h.reshape(batch_count, channel_count, height, width)  # (B, C, H, W)
        return residual(x, self.proj_out(h))


class MiddleLayer(nn.Module):
    def __init__(self, channel_count: int, group_count: int):
        super().__init__()
        self.block_1 = ResnetBlock(channel_count, channel_count, group_count)
        self.attn_1 = AttentionBlock(channel_count, group_count)
        self.block_2 = ResnetBlock(channel_count, channel_count, group_count)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution to smooth the blocks."""

    def __init__(self, channel_count: int):
        super().__init__()
        self.conv = nn.Conv2d(channel_count, channel_count, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpsampleBlock(nn.Module):
    def __init__(self, count_in: int, count_out: int, config: VQGanConfig, has_attention: bool, has_upsample: bool):
        super().__init__()
        g = config.group_count
        self.block = nn.ModuleList(
            ResnetBlock(count_in if j == 0 else count_out, count_out, g) for j in range(config.block_count)
        )
        self.attn = (
            nn.ModuleList(AttentionBlock(count_out, g) for _ in range(config.block_count)) if has_attention else None
        )
        self.upsample = Upsample(count_out) if has_upsample else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for j, block in enumerate(self.block):
            h = block(h)
            if self.attn is not None:
                h = self.attn[j](h)
        if self.upsample is not None:
            h = self.upsample(h)
        return h


class Decoder(nn.Module):
    """Code vectors (B, embed, h, w) -> RGB (B, 3, h*f, w*f), f = config.downsample_factor."""

    def __init__(self, config: VQGanConfig):
        super().__init__()
        counts = config.channel_counts
        top = counts[-1]
        self.conv_in = nn.Conv2d(config.embed_count, top, 3, padding=1)
        self.mid = MiddleLayer(top, config.group_count)
        # up[i] outputs counts[i]; it reads the output of up[i + 1] (or the middle, for the last)
        self.up = nn.ModuleList(
            UpsampleBlock(
                counts[min(i + 1, len(counts) - 1)],
                counts[i],
                config,
                has_attention=i in config.attention_levels,
                has_upsample=i > 0,
            )
            for i in range(len(counts))
        )
        self.norm_out = nn.GroupNorm(config.group_count, counts[0])
        self.conv_out = nn.Conv2d(counts[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.conv_in(z)
        z = self.mid(z)
        record("vqgan mid", z)
        for i in reversed(range(len(self.up))):  # widest, coarsest level first
            z = self.up[i](z)
            record(f"vqgan up[{i}]", z)
        z = self.conv_out(swish(self.norm_out(z)))
        record("vqgan conv_out", z)
        return z


def check_grid_size(grid_size: Any) -> int:
    """A grid of g x g images: g a positive int."""
    if isinstance(grid_size, bool):
        raise TypeError("grid_size must be an integer, got a bool")
    try:
        grid_size = operator.index(grid_size)
    except TypeError:
        raise TypeError(f"grid_size must be an integer such as 3 (a 3x3 grid), got {grid_size!r}") from None
    if grid_size < 1:
        raise ValueError(f"grid_size must be at least 1, got {grid_size}")
    return grid_size


def check_image_tokens(image_tokens: torch.Tensor, vocab_count: int) -> None:
    """Refuse codes outside the codebook (0..vocab_count-1) before the embedding lookup fails on them.

    Reads the values, so it runs where tokens enter from outside (`MinDalle.image_grid_from_tokens`),
    not inside the module, which also runs on the meta device, where tensors hold no values."""
    if image_tokens.numel():
        low, high = int(image_tokens.min()), int(image_tokens.max())
        if low < 0 or high >= vocab_count:
            raise ValueError(f"image tokens must lie in 0..{vocab_count - 1}, got {low}..{high}")


def tile_images(images: torch.Tensor, columns: int, fill: float = 0.0) -> torch.Tensor:
    """(n, H, W, C) -> (rows*H, columns*W, C): image i at row i // columns, column i % columns,
    the rest of a short last row `fill`. Every picture grid of the package is laid out here."""
    image_count, height, width, channels = images.shape
    rows = -(-image_count // columns)
    if rows * columns != image_count:
        padding = images.new_full((rows * columns - image_count, height, width, channels), fill)
        images = torch.cat([images, padding])
    grid = images.reshape(rows, columns, height, width, channels)  # (r, c, y, x, channels)
    grid = grid.transpose(1, 2)  # (r, y, c, x, channels)
    return grid.reshape(rows * height, columns * width, channels)  # (r*H + y, c*W + x, channels)


def images_to_grid(images: torch.Tensor) -> torch.Tensor:
    """(g*g, H, W, 3) -> (g*H, g*W, 3), image i = a*g + b at grid row b, column a (min-dalle's order)."""
    image_count, height, width, channels = images.shape
    grid_size = round(image_count**0.5)
    if grid_size * grid_size != image_count:
        raise ValueError(f"a grid needs a square number of images, got {image_count}")
    images = images.reshape(grid_size, grid_size, height, width, channels).transpose(0, 1)  # (b, a, y, x, c)
    return tile_images(images.flatten(0, 1), grid_size)  # (b*H + y, a*W + x, c)


def grid_to_images(grid: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Inverse of `images_to_grid`: (g*H, g*W, 3) -> (g*g, H, W, 3)."""
    height, width = grid.shape[0] // grid_size, grid.shape[1] // grid_size
    images = grid.reshape(grid_size * height, grid_size, width, grid.shape[2])  # (b*H + y, a, x, c)
    images = images.transpose(1, 0)  # (a, b*H + y, x, c)
    return images.reshape(grid_size * grid_size, height, width, grid.shape[2])  # (a*g + b, y, x, c)


class VQGanDetokenizer(nn.Module):
    def __init__(self, config: VQGanConfig | None = None):
        super().__init__()
        config = config or VQGanConfig.dalle()
        if not isinstance(config, VQGanConfig):
            raise TypeError(f"VQGanDetokenizer needs a VQGanConfig, got {type(config).__name__}")
        self.config = config
        self.vocab_count = config.vocab_count
        self.embedding = nn.Embedding(config.vocab_count, config.embed_count)  # the codebook
        self.post_quant_conv = nn.Conv2d(config.embed_count, config.embed_count, 1)
        self.decoder = Decoder(config)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, embed, h, w) -> raw RGB (B, 3, H, W), about 0..1; differentiable."""
        return self.decoder(self.post_quant_conv(z))

    def token_map(self, image_tokens: torch.Tensor, is_seamless: bool) -> torch.Tensor:
        """(n, h*w) tokens -> (n, h, w) maps, or one (g*h, g*w) map when seamless."""
        if image_tokens.dim() != 2 or image_tokens.dtype not in (torch.long, torch.int):
            raise ValueError(
                f"image tokens must be a 2-d integer tensor (images, tokens), got {tuple(image_tokens.shape)}"
            )
        image_count, token_count = image_tokens.shape
        side = round(token_count**0.5)
        if side * side != token_count:
            raise ValueError(f"tokens per image must be a square, got {token_count}")
        z = image_tokens.reshape(image_count, side, side)  # (n, h, w)
        if not is_seamless:
            return z
        return images_to_grid(z[..., None])[..., 0][None]  # (1, g*h, g*w): tiles side by side

    def decode_images(self, image_tokens: torch.Tensor, is_seamless: bool = False) -> torch.Tensor:
        """(n, h*w) tokens -> (m, H, W, 3) pixels 0..255 (m = n, or 1 when seamless)."""
        z = self.token_map(image_tokens.to(self.embedding.weight.device), is_seamless)
        z = self.embedding(z)  # (m, h, w, embed)
        record("vqgan code vectors", z)
        z = z.permute(0, 3, 1, 2).contiguous()  # (m, embed, h, w): channels first for the convolutions
        z = self.decode_latents(z.to(self.post_quant_conv.weight.dtype))
        z = z.permute(0, 2, 3, 1)  # (m, H, W, 3): pixels last, as images are stored
        return z.clip(0.0, 1.0) * 255

    def forward(self, is_seamless: bool, z: torch.Tensor) -> torch.Tensor:
        """min-dalle's call: (g*g, h*w) tokens -> one (g*H, g*W, 3) grid of pixels 0..255."""
        images = self.decode_images(z, is_seamless)
        grid = images[0] if is_seamless else images_to_grid(images)
        record("image grid", grid)
        return grid
