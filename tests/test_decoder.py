"""The key/value cache: decoding token by token equals one teacher-forced pass."""
from __future__ import annotations

import torch

from dalle_core import DalleBartDecoder, DalleBartEncoder
from dalle_core.encoder import text_attention_mask
from dalle_core.pipeline import expanded_indices, new_attention_state, pack_text_tokens

from .conftest import SMALL, randomize


def test_cached_decoding_equals_teacher_forcing(tokenizer):
    encoder, decoder = randomize(DalleBartEncoder(SMALL), 1), randomize(DalleBartDecoder(SMALL), 2)
    image_count = 2
    text_tokens = pack_text_tokens(tokenizer.tokenize("a red circle"), 64)[expanded_indices(image_count)]
    attention_mask = text_attention_mask(text_tokens)
    image_tokens = torch.randint(0, 16384, (image_count, 256), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        encoder_state = encoder(text_tokens)
        state = new_attention_state(SMALL, image_count)
        cached = torch.cat([
            decoder(attention_mask, encoder_state, state, image_tokens[:, [i]], torch.tensor([i]))[0]
            for i in range(256)
        ], dim=1)  # (2n, 256, 16385)
        forced, _ = decoder(attention_mask, encoder_state, None, image_tokens, torch.arange(256))
        # the cache can also be filled in one pass (prefill), then continued one token at a time
        prefilled = new_attention_state(SMALL, image_count)
        decoder(attention_mask, encoder_state, prefilled, image_tokens[:, :100], torch.arange(100))
        continued, _ = decoder(attention_mask, encoder_state, prefilled, image_tokens[:, [100]], torch.tensor([100]))
    torch.testing.assert_close(cached, forced, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(prefilled[:, :, :100], state[:, :, :100], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(continued[:, 0], cached[:, 100], atol=1e-4, rtol=1e-4)


def test_cache_layout_keys_then_values():
    decoder = randomize(DalleBartDecoder(SMALL), 3)
    image_count = 1
    encoder_state = torch.randn(2, 64, SMALL.embed_count)
    attention_mask = torch.ones(2, 1, 1, 64, dtype=torch.bool)
    state = new_attention_state(SMALL, image_count)
    with torch.no_grad():
        decoder(attention_mask, encoder_state, state, torch.tensor([[5]]), torch.tensor([0]))
        x = decoder.layernorm_embedding(
            decoder.embed_tokens(torch.tensor([[5], [5]])) + decoder.embed_positions(torch.tensor([0]))
        )
        x = decoder.layers[0].pre_self_attn_layer_norm(x)
        keys, values = decoder.layers[0].self_attn.k_proj(x), decoder.layers[0].self_attn.v_proj(x)
    assert state.shape == (2, 4, 256, 32 * 2)
    torch.testing.assert_close(state[0, :2, 0], keys[:, 0])
    torch.testing.assert_close(state[0, 2:, 0], values[:, 0])
    assert state[:, :, 1:].abs().sum() == 0  # later slots untouched


def test_recorded_formula_equals_fused_attention(tokenizer):
    """Recording runs the spelled-out attention; otherwise torch's fused kernel: same numbers."""
    from dalle_core.trace import recording

    encoder = randomize(DalleBartEncoder(SMALL), 1)
    text_tokens = pack_text_tokens(tokenizer.tokenize("a red circle"), 64)
    with torch.no_grad():
        fused = encoder(text_tokens)
        with recording() as records:
            spelled_out = encoder(text_tokens)
    assert any(r.name == "encoder self-attention weights" for r in records)
    torch.testing.assert_close(spelled_out, fused, atol=1e-5, rtol=1e-5)
