from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dalle_core import DalleConfig, TextTokenizer, VQGanConfig
from dalle_core.lab.random_weights import make_vocab, randomize, write_tokenizer

# Small tensors gain nothing from threads, and on a busy machine a second thread waiting
# at every barrier makes each op 10-100x slower. Tests that time or need threads set their own.
torch.set_num_threads(1)

# A small model with min-dalle's fixed parts (64 text tokens, 256 image tokens, 16384 codes).
SMALL = DalleConfig(
    layer_count=2, attention_head_count=4, embed_count=64, glu_embed_count=96,
    text_vocab_count=200, image_vocab_count=16384, name="small",
)
# A VQGAN small enough for tests: 2 levels, 4x4 tokens -> 8x8 pixels.
SMALL_VQGAN = VQGanConfig(vocab_count=64, embed_count=16, channel_counts=(16, 32), attention_levels=(1,),
                          block_count=1, group_count=8, name="small")


@pytest.fixture(scope="session")
def tokenizer() -> TextTokenizer:
    vocab, merges = make_vocab()
    return TextTokenizer(vocab, merges)


# A whole model in the course model's file layout, small enough to generate in milliseconds.
TEST_TINY = DalleConfig(
    layer_count=2, attention_head_count=4, embed_count=32, glu_embed_count=48, text_vocab_count=200,
    image_vocab_count=64, image_token_count=16, image_code_count=64, image_start_token=64, name="test-tiny",
)


def write_tiny_model(folder: Path) -> Path:
    """config.json, tokenizer, encoder/decoder/detoker .pt: what `MinDalle(folder, model="tiny")` reads."""
    from dalle_core import DalleBartDecoder, DalleBartEncoder, VQGanDetokenizer

    write_tokenizer(folder)
    (folder / "config.json").write_text(json.dumps({"dalle": TEST_TINY.to_dict(), "vqgan": SMALL_VQGAN.to_dict()}))
    modules = {"encoder": DalleBartEncoder(TEST_TINY), "decoder": DalleBartDecoder(TEST_TINY),
               "detoker": VQGanDetokenizer(SMALL_VQGAN)}
    for seed, (name, module) in enumerate(modules.items()):
        torch.save(randomize(module, seed=seed + 20).state_dict(), folder / f"{name}.pt")
    return folder


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))
