"""Training the course model's VQGAN as an autoencoder: pixels -> tokens -> pixels.

    pixels (B, 3, 64, 64) --VQGanEncoder--> z_e (B, E, 16, 16) --VectorQuantizer--> z_q, tokens (B, 256)
        --VQGanDetokenizer.decode_latents--> reconstruction (B, 3, 64, 64)

(64x64 pictures, a downsampling factor of 4, so 16x16 = 256 tokens from 1024 codes of E = 32 dims:
`VQGanConfig.tiny()`.)

The loss is pixel error only, L1 + L2 (L1 keeps edges sharp, L2 punishes the rare
large miss), plus the commitment term that keeps the encoder's vectors near their
codes. Real VQGANs add a perceptual loss and a GAN discriminator to invent texture;
flat-coloured shapes have no texture to invent, so both would cost CPU minutes for
nothing. The decoder half *is* the project's `VQGanDetokenizer`, so the trained
weights load into it unchanged; the codebook is copied into its `embedding` at the end.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import VQGanConfig, load_model_config
from ..trace import progress_bar
from ..vqgan import VQGanDetokenizer
from ..weights import load_module
from .data import BACKGROUND_COLOURS, GEOMETRY, Geometry, images_to_tensor, make_dataset
from .quantizer import VectorQuantizer, nearest_codes
from .schedule import set_learning_rate
from .vqgan_encoder import VQGanEncoder

VALIDATION_START = 10**8  # data indices from here on are never trained on


def course_vqgan_config() -> VQGanConfig:
    """The course model's VQGAN: `VQGanConfig.tiny()`, the one place its sizes are written."""
    return VQGanConfig.tiny()


class VQGanAutoencoder(torch.nn.Module):
    """Encoder + quantizer + the project's detokenizer, trained together."""

    def __init__(self, config: VQGanConfig):
        super().__init__()
        self.config = config
        self.encoder = VQGanEncoder(config)
        self.quantizer = VectorQuantizer(config.vocab_count, config.embed_count)
        self.detokenizer = VQGanDetokenizer(config)

    def forward(self, pixels: torch.Tensor, is_quantized: bool = True):
        """Reconstruct `pixels`; with `is_quantized=False` the codebook is skipped (warm-up)."""
        z_e = self.encoder(pixels)  # (B, E, h, w)
        if not is_quantized:
            return self.detokenizer.decode_latents(z_e), None, z_e
        quantized = self.quantizer(z_e)
        reconstruction = self.detokenizer.decode_latents(quantized.z_q)  # (B, 3, H, W)
        return reconstruction, quantized, z_e

    @torch.no_grad()
    def tokenize(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels in 0..1 -> image tokens (B, h*w)."""
        return self.quantizer.tokenize(self.encoder(pixels))

    @torch.no_grad()
    def export_detokenizer(self) -> VQGanDetokenizer:
        """The detokenizer with the trained codebook in `embedding`, ready to save."""
        self.detokenizer.embedding.weight.copy_(self.quantizer.codebook)
        return self.detokenizer


def load_autoencoder(root: str | Path) -> VQGanAutoencoder:
    """A trained autoencoder from a model folder's config.json, vqgan_encoder.pt and detoker.pt
    (the codebook is the detokenizer's `embedding`), to retrain only the transformer."""
    root = Path(root)
    _, config = load_model_config(root)
    model = VQGanAutoencoder(config)
    for module, name in ((model.encoder, "vqgan_encoder.pt"), (model.detokenizer, "detoker.pt")):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root / name} does not exist; train the VQGAN first (drop --vqgan-from)")
        load_module(module, root / name, torch.float32, "cpu")
    model.quantizer.initialize(model.detokenizer.embedding.weight.detach())
    model.quantizer.codebook.copy_(model.detokenizer.embedding.weight.detach())  # exactly, not k-means of it
    return model.eval()


@dataclass
class VQGanHistory:
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    perplexity: list[float] = field(default_factory=list)
    restarted: int = 0


def object_weights(pixels: torch.Tensor, records: list, object_weight: float, edge_weight: float = 1.0) -> torch.Tensor:
    """Per-pixel loss weights (B, 1, H, W): 1 on background, `object_weight` on objects,
    times `edge_weight` where a 3x3 neighbourhood holds two colours (an outline).

    Most of a picture is background, so an unweighted loss is satisfied long before
    small objects get their colour right; but the object's colour is what a caption
    asks for, and what the detector reads. Outlines are fewer pixels still, and they
    are what tells a star from a circle once the picture is cut into 4x4-pixel tokens.
    """
    background = torch.tensor([BACKGROUND_COLOURS[r.background] for r in records], dtype=torch.float32) / 255  # (B, 3)
    is_object = (pixels - background[:, :, None, None]).abs().sum(1, keepdim=True) > 0.1  # (B, 1, H, W)
    weights = 1 + (object_weight - 1) * is_object.float()
    if edge_weight != 1.0:
        spread = F.max_pool2d(pixels, 3, 1, 1) + F.max_pool2d(-pixels, 3, 1, 1)  # (B, 3, H, W): max - min nearby
        is_edge = spread.sum(1, keepdim=True) > 0.1  # (B, 1, H, W)
        weights = weights * (1 + (edge_weight - 1) * is_edge.float())
    return weights


def reconstruction_loss(
    reconstruction: torch.Tensor, pixels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted L1 + L2 on 0..1 pixels, normalised so that weights of 1 give the plain mean."""
    error = (reconstruction - pixels).abs() + (reconstruction - pixels).pow(2)  # (B, 3, H, W)
    if weights is None:
        return error.mean()
    return (error * weights).sum() / (weights.sum() * pixels.shape[1])


@torch.enable_grad()  # even if something (min_dalle's import does) switched gradients off
def train_vqgan(
    config: VQGanConfig, steps: int, batch_size: int = 32, learning_rate: float = 2e-3,
    data_seed: int = 0, seed: int = 0,
    commitment_weight: float = 0.25, restart_every: int = 10, warmup_share: float = 0.2,
    object_weight: float = 10.0, edge_weight: float = 1.0,
    on_sample: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None, sample_every: int = 0,
    progress: bool = True, geometry: Geometry = GEOMETRY,
) -> tuple[VQGanAutoencoder, VQGanHistory]:
    """Train for `steps` batches of fresh synthetic images (index = step * batch + i).

    The first `warmup_share` of the steps train a plain (unquantized) autoencoder; then
    the codebook is initialised by k-means on the encoder's vectors and quantization
    starts. A codebook fitted to a random encoder (step 0) describes features the
    encoder is about to abandon; fitted after warm-up, every code starts among vectors
    that mean something, and the decoder already knows how to paint colours and edges.
    `on_sample(step, pixels, reconstruction)` is called every `sample_every` steps.
    """
    torch.manual_seed(seed)
    model = VQGanAutoencoder(config).to(memory_format=torch.channels_last)  # faster CPU convolutions
    optimizer = torch.optim.Adam(
        list(model.encoder.parameters()) + list(model.detokenizer.parameters()), lr=learning_rate, betas=(0.9, 0.99)
    )
    history = VQGanHistory()
    warmup_steps = int(steps * warmup_share)
    model.train()
    bar = progress_bar(range(steps), "vqgan", progress)
    for step in bar:
        images, records = make_dataset(batch_size, seed=data_seed, start=step * batch_size, geometry=geometry)
        pixels = images_to_tensor(images).to(memory_format=torch.channels_last)  # (B, 3, 64, 64)
        weights = object_weights(pixels, records, object_weight, edge_weight)
        set_learning_rate(optimizer, step, steps, learning_rate, max_warmup=50)
        is_quantized = step >= warmup_steps
        if step == warmup_steps:
            model.quantizer.initialize(_encoder_vectors(model, batch_size, data_seed, step * batch_size, geometry))
        reconstruction, quantized, z_e = model(pixels, is_quantized)
        loss = reconstruction_loss(reconstruction, pixels, weights)
        if quantized is not None:
            loss = loss + commitment_weight * quantized.commitment_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if is_quantized and restart_every and step % restart_every == restart_every - 1 and step < steps * 0.9:
            history.restarted += model.quantizer.restart_dead_codes(z_e)
        perplexity = quantized.perplexity.item() if quantized is not None else float("nan")
        history.steps.append(step)
        history.loss.append(loss.item())
        history.perplexity.append(perplexity)
        if step % 10 == 0:  # codebook perplexity once quantization has started; before it, no codebook
            usage = f"perplexity={perplexity:.0f}" if quantized is not None else "warm-up, no codebook yet"
            bar.set_postfix_str(f"loss={loss.item():.4f}, {usage}")
        if on_sample is not None and sample_every and (step % sample_every == 0 or step == steps - 1):
            on_sample(step, pixels.detach(), reconstruction.detach())
    model.eval()
    return model, history


@torch.no_grad()
def _encoder_vectors(
    model: VQGanAutoencoder, batch_size: int, data_seed: int, start: int, geometry: Geometry, batches: int = 4
) -> torch.Tensor:
    """Encoder vectors of the next few batches, (batches * B * h * w, E), for k-means."""
    images, _ = make_dataset(batches * batch_size, seed=data_seed, start=start, geometry=geometry)
    z_e = model.encoder(images_to_tensor(images))  # (n, E, h, w)
    return z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])  # (n*h*w, E)


@torch.no_grad()
def tokenize_pictures(
    detokenizer: VQGanDetokenizer, encoder: VQGanEncoder, images: np.ndarray, batch_size: int = 64
) -> torch.Tensor:
    """Pictures (n, H, W, 3) uint8 -> image tokens (n, h*w): the nearest code of the
    detokenizer's codebook (as saved) to each encoder vector. `batch_size` pictures at a time,
    so that the encoder's full-resolution activations stay small."""
    codebook = detokenizer.embedding.weight.float()
    tokens = []
    for start in range(0, len(images), batch_size):
        z_e = encoder(images_to_tensor(images[start : start + batch_size]))  # (B, E, h, w)
        vectors = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])  # (B*h*w, E)
        tokens.append(nearest_codes(vectors, codebook).view(z_e.shape[0], -1))  # (B, h*w)
    return torch.cat(tokens)  # (n, h*w)


@torch.no_grad()
def round_trip(
    detokenizer: VQGanDetokenizer, encoder: VQGanEncoder, images: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pictures (n, H, W, 3) uint8 -> image tokens (n, h*w) (`tokenize_pictures`) -> decoded
    pixels (n, H, W, 3), floats 0..255."""
    image_tokens = tokenize_pictures(detokenizer, encoder, images)  # (n, h*w)
    return image_tokens, detokenizer.decode_images(image_tokens)


@torch.no_grad()
def evaluate_reconstruction(
    detokenizer: VQGanDetokenizer,
    encoder: VQGanEncoder,
    count: int = 512,
    data_seed: int = 0,
    batch_size: int = 64,
    geometry: Geometry = GEOMETRY,
) -> dict[str, float]:
    """Held-out pictures through the *shipped* path: encoder -> nearest code of the detokenizer's
    codebook (`embedding`, as saved) -> detokenizer -> pixels 0..255.

    Returns mean absolute and squared error on 0..1 pixels, PSNR in dB, the share of the
    codebook the pictures use, and the detector's read-back of each attribute (the ceiling
    for anything the transformer draws). The one reconstruction metric of the course model.
    """
    from .detect import detector_accuracy

    absolute, squared, used, hits = 0.0, 0.0, set(), {}
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        images, records = make_dataset(n, seed=data_seed, start=VALIDATION_START + start, geometry=geometry)
        image_tokens, decoded = round_trip(detokenizer, encoder, images)  # (n, h*w), (n, H, W, 3) 0..255
        used.update(image_tokens.unique().tolist())
        error = decoded / 255 - torch.from_numpy(images).float() / 255
        absolute += error.abs().mean().item() * n
        squared += error.pow(2).mean().item() * n
        for name, share in detector_accuracy(decoded.round().to(torch.uint8).numpy(), records, geometry).items():
            hits[name] = hits.get(name, 0.0) + share * n
    mse = squared / count
    return {
        "images": count,
        "mae": round(absolute / count, 5),
        "mse": round(mse, 5),
        "psnr_db": round(10 * math.log10(1 / max(mse, 1e-12)), 2),
        "codebook_used": round(len(used) / detokenizer.vocab_count, 3),
        **{f"detected_{name}": round(total / count, 3) for name, total in hits.items()},
    }


@torch.no_grad()
def tokenize_dataset(
    model: VQGanAutoencoder,
    count: int,
    data_seed: int,
    batch_size: int = 256,
    progress: bool = True,
    geometry: Geometry = GEOMETRY,
) -> torch.Tensor:
    """Image tokens (count, h*w) of data-set examples 0..count-1, for training the transformer."""
    model.eval()
    chunks = []
    for start in progress_bar(range(0, count, batch_size), "tokenize", progress):
        images, _ = make_dataset(min(batch_size, count - start), seed=data_seed, start=start, geometry=geometry)
        chunks.append(model.tokenize(images_to_tensor(images).to(memory_format=torch.channels_last)))
    return torch.cat(chunks) if chunks else torch.zeros(0, 0, dtype=torch.long)
