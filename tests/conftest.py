"""What several test modules share: small model sizes, a tokenizer, a model folder, helpers.

Test modules take these as fixtures (or import the constants from here); no test module
imports from another.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

from dalle_core import DalleConfig, TextTokenizer, VQGanConfig
from dalle_core.lab.random_weights import make_vocab, randomize, write_tokenizer
from dalle_core.pipeline import expanded_indices
from dalle_core.tokenizer import pack_text_tokens

# Small tensors gain nothing from threads, and on a busy machine a second thread waiting
# at every barrier makes each op 10-100x slower. Tests that time or need threads set their own.
torch.set_num_threads(1)
# Progress bars asked for by the code under test stay quiet (dalle_core.trace.progress_bar).
os.environ["TQDM_DISABLE"] = "1"
ROOT = Path(__file__).resolve().parents[1]

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


@pytest.fixture(scope="session")
def prepared(tokenizer) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """`prepared(encoder, text, image_count)`: the decoder's inputs for a prompt, as the pipeline
    makes them: encoder_state (2n, 64, E) and attention_mask (2n, 1, 1, 64)."""

    def prepare(encoder: torch.nn.Module, text: str, image_count: int) -> tuple[torch.Tensor, torch.Tensor]:
        text_tokens = pack_text_tokens(tokenizer.tokenize(text), 64)
        with torch.no_grad():
            encoder_state = encoder(text_tokens)
        indices = expanded_indices(image_count)
        text_tokens, encoder_state = text_tokens[indices], encoder_state[indices]
        return encoder_state, text_tokens.ne(1)[:, None, None, :]

    return prepare


@pytest.fixture(scope="session")
def import_file() -> Callable[[str], ModuleType]:
    """`import_file("scripts/export_html.py")`: a script of the repository (scripts/, bench/ are no
    packages) imported as a module; its own folder is importable while it loads."""

    def load(relative: str) -> ModuleType:
        path = ROOT / relative
        spec = importlib.util.spec_from_file_location(f"_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        return module

    return load
