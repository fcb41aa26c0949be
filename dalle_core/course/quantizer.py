"""The vector quantizer that turns the VQGAN encoder's vectors into image tokens.

Every 4x4-pixel patch becomes the id of its nearest codebook vector: that id is an
image token, the "word" the DALL·E decoder writes. Trained naively (codebook moved by
a loss gradient, codebook initialised at random) most codes are never nearest to any
vector, get no gradient, and stay dead: *codebook collapse*, a vocabulary of a few
dozen tokens instead of hundreds. Three standard remedies, all used here because each
fixes a different failure and together they cost almost nothing on a CPU:

* **k-means initialisation** (data-dependent): the codebook starts as k-means centres
  of a few batches of encoder vectors, so every code starts among real vectors instead
  of in empty space. The training loop (`dalle_core.course.vqgan_train`) first trains the
  autoencoder unquantized for a fifth of its steps, so the vectors being clustered
  already mean something.
* **EMA updates** (VQ-VAE-2): each code moves to the running mean of the vectors
  assigned to it. No codebook learning rate to tune and fast convergence, which
  matters in a run of minutes; the encoder still gets a commitment loss.
* **dead-code restarts**: a code whose running usage falls below a threshold is
  moved onto a random encoder vector of the current batch, so vocabulary that the
  data stopped using is recycled rather than lost.

After training the codebook is copied into `VQGanDetokenizer.embedding`, which is how
it ships inside `detoker.pt`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    z_q: torch.Tensor  # (B, E, h, w) quantized, with straight-through gradient to z_e
    image_tokens: torch.Tensor  # (B, h * w) long, row-major over the token grid
    commitment_loss: torch.Tensor  # scalar: mean ||z_e - sg(z_q)||^2
    perplexity: torch.Tensor  # scalar: exp(entropy of this batch's code usage)


def nearest_codes(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code (squared Euclidean) for each of `vectors` (N, E) -> (N,)."""
    # ||v - c||^2 = ||v||^2 - 2 v.c + ||c||^2; ||v||^2 is the same for every code.
    distances = codebook.pow(2).sum(1)[None, :] - 2 * vectors @ codebook.t()  # (N, V)
    return distances.argmin(dim=1)


def kmeans(
    vectors: torch.Tensor, count: int, iterations: int = 10, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`count` k-means centres of `vectors` (N, E) by Lloyd's algorithm -> (count, E).

    Empty clusters are re-seeded from random vectors, so every centre ends up among data.
    """
    n = vectors.shape[0]
    picks = (
        torch.randint(n, (count,), generator=generator) if n < count else torch.randperm(n, generator=generator)[:count]
    )
    centres = vectors[picks].clone()
    for _ in range(iterations):
        assign = nearest_codes(vectors, centres)  # (N,)
        sums = torch.zeros_like(centres).index_add_(0, assign, vectors)
        counts = torch.bincount(assign, minlength=count).to(vectors.dtype)  # (count,)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            centres[empty] = vectors[torch.randint(n, (int(empty.sum()),), generator=generator)]
    return centres


class VectorQuantizer(nn.Module):
    """Nearest-code lookup with a k-means-initialised, EMA-updated, self-restarting codebook.

    The codebook and its statistics are buffers, not parameters: the optimiser never
    touches them; `forward` in training mode updates them.
    """

    def __init__(
        self,
        vocab_count: int,
        embed_count: int,
        decay: float = 0.95,
        dead_usage: float = 0.03,
        epsilon: float = 1e-5,
    ):
        super().__init__()
        self.vocab_count, self.embed_count = vocab_count, embed_count
        self.decay, self.dead_usage, self.epsilon = decay, dead_usage, epsilon
        self.register_buffer("codebook", torch.randn(vocab_count, embed_count) * 0.1)
        self.register_buffer("cluster_size", torch.ones(vocab_count))  # EMA of vectors per code
        self.register_buffer("embed_sum", self.codebook.clone())  # EMA of their sum
        self.register_buffer("is_initialized", torch.tensor(False))

    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        batch, embed, height, width = z_e.shape
        if embed != self.embed_count:
            raise ValueError(f"z_e has {embed} channels but the codebook vectors have {self.embed_count}")
        vectors = z_e.permute(0, 2, 3, 1).reshape(-1, embed)  # (B*h*w, E)
        if self.training and not bool(self.is_initialized):
            self.initialize(vectors.detach())
        codes = nearest_codes(vectors.detach(), self.codebook)  # (B*h*w,)
        if self.training:
            self._ema_update(vectors.detach(), codes)
        z_q = self.codebook[codes].view(batch, height, width, embed).permute(0, 3, 1, 2)  # (B, E, h, w)
        commitment_loss = F.mse_loss(z_e, z_q.detach())
        z_q = z_e + (z_q - z_e).detach()  # straight-through: forward z_q, gradient to z_e
        usage = torch.bincount(codes, minlength=self.vocab_count).float() / codes.numel()  # (V,)
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        return QuantizerOutput(z_q, codes.view(batch, height * width), commitment_loss, perplexity)

    @torch.no_grad()
    def initialize(self, vectors: torch.Tensor) -> None:
        """Codebook := k-means centres of `vectors` (N, E); usage statistics reset."""
        self.codebook.copy_(kmeans(vectors, self.vocab_count))
        self.embed_sum.copy_(self.codebook)
        self.cluster_size.fill_(1.0)
        self.is_initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, vectors: torch.Tensor, codes: torch.Tensor) -> None:
        one_hot_counts = torch.bincount(codes, minlength=self.vocab_count).to(vectors.dtype)  # (V,)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, vectors)  # (V, E)
        self.cluster_size.mul_(self.decay).add_(one_hot_counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # Laplace smoothing keeps a rarely used code from dividing by ~0.
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.vocab_count * self.epsilon) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(self, z_e: torch.Tensor) -> int:
        """Move every code used less than `dead_usage` vectors per step (EMA) onto a random
        vector of `z_e` (B, E, h, w); returns how many codes were restarted."""
        vectors = z_e.detach().permute(0, 2, 3, 1).reshape(-1, self.embed_count)  # (B*h*w, E)
        dead = self.cluster_size < self.dead_usage
        count = int(dead.sum())
        if count:
            picks = torch.randint(vectors.shape[0], (count,))
            noise = 0.01 * vectors.std() * torch.randn(count, self.embed_count)
            self.codebook[dead] = vectors[picks] + noise
            self.embed_sum[dead] = self.codebook[dead]
            self.cluster_size[dead] = 1.0
        return count

    @torch.no_grad()
    def tokenize(self, z_e: torch.Tensor) -> torch.Tensor:
        """Image tokens of encoder output `z_e` (B, E, h, w) -> (B, h*w), no updates."""
        batch, embed, height, width = z_e.shape
        vectors = z_e.permute(0, 2, 3, 1).reshape(-1, embed)  # (B*h*w, E)
        return nearest_codes(vectors, self.codebook).view(batch, height * width)  # (B, h*w)
