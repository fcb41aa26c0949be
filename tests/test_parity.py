"""dalle_core against min-dalle 0.4.11 on the same random weights."""
from __future__ import annotations

import pytest
import torch

from dalle_core import DalleBartDecoder, DalleBartEncoder, VQGanDetokenizer
from dalle_core.pipeline import new_attention_state, pack_text_tokens

from . import oracle
from .conftest import SMALL, make_vocab, randomize

PROMPTS = ["a red circle", "the cat and the hat", "", "RED circle!!  on   a  green-ish bg"]


@pytest.fixture(scope="module")
def pair():
    ours_encoder = randomize(DalleBartEncoder(SMALL), seed=1)
    ours_decoder = randomize(DalleBartDecoder(SMALL), seed=2)
    ref_encoder, ref_decoder = oracle.encoder(SMALL), oracle.decoder(SMALL)
    ref_encoder.load_state_dict(ours_encoder.state_dict(), strict=True)
    ref_decoder.load_state_dict(ours_decoder.state_dict(), strict=True)
    return ours_encoder, ours_decoder, ref_encoder, ref_decoder


@pytest.mark.parametrize("text", PROMPTS)
def test_encoder_state(pair, tokenizer, text):
    ours, _, ref, _ = pair
    text_tokens = pack_text_tokens(tokenizer.tokenize(text), 64)
    with torch.no_grad():
        assert torch.allclose(ours(text_tokens), ref(text_tokens), atol=1e-5, rtol=1e-5)


@pytest.mark.slow  # 256 cached steps and one uncached pass, twice: 10 s here
def test_every_cached_step_and_teacher_forcing(pair, prepared):
    ours_encoder, ours, _, ref = pair
    image_count = 2
    encoder_state, attention_mask = prepared(ours_encoder, "a red circle", image_count)
    image_tokens = torch.randint(0, 16384, (image_count, 257), generator=torch.Generator().manual_seed(3))
    image_tokens[:, 0] = 16383
    ref_state = new_attention_state(SMALL, image_count)
    our_state = new_attention_state(SMALL, image_count)
    token_indices = torch.arange(256)
    with torch.no_grad():
        for i in range(256):
            step = dict(attention_mask=attention_mask, encoder_state=encoder_state,
                        prev_tokens=image_tokens[:, [i]], token_index=token_indices[[i]])
            ref_logits, ref_state = ref(attention_state=ref_state, **step)
            our_logits, our_state = ours(attention_state=our_state, **step)
            assert our_logits.shape == (2 * image_count, 1, 16385)
            torch.testing.assert_close(our_logits, ref_logits, atol=2e-4, rtol=1e-4, msg=f"step {i}")
        torch.testing.assert_close(our_state, ref_state, atol=1e-5, rtol=1e-5)
        # all 256 tokens in one pass, no cache: min-dalle's multi-token path
        ref_logits, _ = ref(
            attention_mask, encoder_state, torch.zeros_like(ref_state), image_tokens[:, :256], token_indices
        )
        our_logits, _ = ours(attention_mask, encoder_state, None, image_tokens[:, :256], token_indices)
        torch.testing.assert_close(our_logits, ref_logits, atol=2e-4, rtol=1e-4)


@pytest.mark.slow  # 256 sampled steps, both models, twice: 11-18 s each here
@pytest.mark.parametrize("settings", [(1.0, 256, 16.0), (0.5, 16, 4.0), (2.0, 1, 1.0), (1.0, 16384, 16.0)])
def test_sample_tokens_same_seed_same_tokens(pair, prepared, settings):
    ours_encoder, ours, _, ref = pair
    image_count = 3
    encoder_state, attention_mask = prepared(ours_encoder, "the red circle", image_count)
    results = []
    for decoder in (ref, ours):
        state = new_attention_state(SMALL, image_count)
        image_tokens = torch.full((image_count, 257), 16383)
        torch.manual_seed(11)
        with torch.no_grad():
            for i in range(256):
                image_tokens[:, i + 1], state = decoder.sample_tokens(
                    torch.tensor(settings),
                    attention_mask=attention_mask,
                    encoder_state=encoder_state,
                    attention_state=state,
                    prev_tokens=image_tokens[:, [i]],
                    token_index=torch.arange(256)[[i]],
                )
        results.append(image_tokens)
    assert torch.equal(results[0], results[1])
    assert len(set(results[1][0].tolist())) > 1, "sampling should not collapse to one token"


@pytest.mark.slow  # DALL·E's full-size VQGAN, 4 images, both models: 80 s here
@pytest.mark.parametrize("is_seamless", [False, True])
def test_vqgan(is_seamless):
    ours = randomize(VQGanDetokenizer(), seed=4, std=1.0)
    ref = oracle.VQGanDetokenizer().eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    z = torch.randint(0, 16384, (4, 256), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = ref(is_seamless, z)
        got = ours(is_seamless, z)
    assert got.shape == expected.shape == (512, 512, 3)
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-4)
    assert 0 < got.mean() < 255


AWKWARD = [
    "",
    " ",
    "   ",
    "\t\n",
    "a",
    "A Red CIRCLE",
    "🐈 on a 🔴",
    "café crème brûlée",
    "naïve résumé über",
    "hello,world!!! ... ???",
    "two  spaces   here",
    " leading and trailing ",
    "日本語のテキスト",
    "emoji😀inside",
    "x" * 300,
    " ".join(["red circle"] * 60),
    "tab\tseparated\twords",
    "new\nline",
    "numbers 123 456",
    "it's the cat's",
    "-_-",
    "ab" * 40,
]


@pytest.mark.parametrize("text", AWKWARD)
def test_tokenizer_ids(tokenizer, text):
    vocab, merges = make_vocab()
    expected = oracle.TextTokenizer(vocab, merges).tokenize(text)
    assert tokenizer.tokenize(text) == expected


def test_tokenizer_over_64_tokens_keeps_end_token(tokenizer):
    tokens = tokenizer.tokenize(" ".join(["red circle"] * 60))
    assert len(tokens) > 64
    text_tokens = pack_text_tokens(tokens, 64)
    assert text_tokens.shape == (2, 64)
    assert text_tokens[1, -1].item() == 2 and text_tokens[1, :63].tolist() == tokens[:63]
    assert text_tokens[0, :3].tolist() == [0, 2, 1]
