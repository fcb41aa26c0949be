"""The vector quantizer and the VQGAN encoder: shapes, nearest codes, codebook use."""
from __future__ import annotations

import torch

from dalle_core.config import VQGanConfig
from dalle_core.course.quantizer import VectorQuantizer, kmeans, nearest_codes
from dalle_core.course.vqgan_encoder import VQGanEncoder
from dalle_core.course.vqgan_train import VQGanAutoencoder


def test_nearest_codes_matches_brute_force():
    torch.manual_seed(0)
    vectors, codebook = torch.randn(50, 4), torch.randn(9, 4)
    expected = torch.cdist(vectors, codebook).argmin(1)
    assert torch.equal(nearest_codes(vectors, codebook), expected)


@torch.enable_grad()  # importing min_dalle (other tests do) turns gradients off globally
def test_quantizer_shapes_and_straight_through_gradient():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(vocab_count=16, embed_count=8)
    z_e = torch.randn(3, 8, 4, 4, requires_grad=True)
    out = quantizer(z_e)
    assert out.z_q.shape == (3, 8, 4, 4) and out.image_tokens.shape == (3, 16)
    assert out.image_tokens.dtype == torch.long and out.image_tokens.max() < 16
    # the forward value is the chosen code ...
    chosen = quantizer.codebook[out.image_tokens.view(-1)].view(3, 4, 4, 8).permute(0, 3, 1, 2)
    assert torch.allclose(out.z_q, chosen, atol=1e-6)
    # ... and the gradient passes straight through to the encoder's vectors
    out.z_q.sum().backward()
    assert torch.allclose(z_e.grad, torch.ones_like(z_e))
    assert torch.equal(quantizer.tokenize(z_e), out.image_tokens)


def test_kmeans_initialisation_uses_the_whole_codebook():
    torch.manual_seed(0)
    centres = torch.randn(8, 2) * 10
    vectors = (centres[:, None, :] + 0.1 * torch.randn(8, 100, 2)).reshape(-1, 2)  # 8 clear clusters
    found = kmeans(vectors, 8, generator=torch.Generator().manual_seed(0))
    assert nearest_codes(vectors, found).unique().numel() == 8


def test_dead_codes_are_restarted_on_data():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(vocab_count=32, embed_count=4, decay=0.5)
    z_e = torch.randn(2, 4, 4, 4) + 100  # every vector far from the random initial codes
    quantizer.initialize(torch.randn(64, 4))  # a codebook fitted elsewhere: all codes far away
    for _ in range(5):
        quantizer(z_e)
    used_before = quantizer(z_e).image_tokens.unique().numel()
    restarted = quantizer.restart_dead_codes(z_e)
    used_after = quantizer(z_e).image_tokens.unique().numel()
    assert restarted > 0 and used_after > used_before


def test_ema_keeps_many_codes_in_use_while_training():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(vocab_count=64, embed_count=4)
    for step in range(60):
        z_e = torch.randn(8, 4, 4, 4)
        out = quantizer(z_e)
        if step % 10 == 9:
            quantizer.restart_dead_codes(z_e)
    assert out.perplexity > 20  # of 64 codes, on 128 gaussian vectors


def test_encoder_downsamples_64_to_8():
    config = VQGanConfig(vocab_count=32, embed_count=8, channel_counts=(8, 8, 8, 16), attention_levels=(3,),
                         block_count=1, group_count=4)
    encoder = VQGanEncoder(config)
    assert encoder(torch.rand(2, 3, 64, 64)).shape == (2, 8, 8, 8)
    autoencoder = VQGanAutoencoder(config)
    reconstruction, quantized, _ = autoencoder(torch.rand(2, 3, 64, 64))
    assert reconstruction.shape == (2, 3, 64, 64) and quantized.image_tokens.shape == (2, 64)
    detokenizer = autoencoder.export_detokenizer()
    assert torch.equal(detokenizer.embedding.weight, autoencoder.quantizer.codebook)
