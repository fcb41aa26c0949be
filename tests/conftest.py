from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import torch

from dalle_core import DalleConfig, TextTokenizer, VQGanConfig
from dalle_core.tokenizer import WORD_START

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


def make_vocab() -> tuple[dict[str, int], list[str]]:
    """A BPE vocabulary over ASCII letters, digits and punctuation, with a few real merges."""
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    symbols = string.ascii_lowercase + string.digits + string.punctuation
    for symbol in [WORD_START, *symbols, *(WORD_START + c for c in symbols)]:
        vocab.setdefault(symbol, len(vocab))
    merges = [f"{WORD_START} {c}" for c in string.ascii_lowercase]
    merges += ["h e", "Ġt he", "Ġa n", "Ġan d", "i n", "Ġ in", "e r", "o n", "Ġre d", "Ġr e", "c i", "r c", "l e"]
    for pair in merges:
        vocab.setdefault(pair.replace(" ", ""), len(vocab))
    return vocab, merges


@pytest.fixture(scope="session")
def tokenizer() -> TextTokenizer:
    vocab, merges = make_vocab()
    return TextTokenizer(vocab, merges)


def write_tokenizer(folder: Path) -> None:
    vocab, merges = make_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def randomize(module: torch.nn.Module, seed: int, std: float = 1.0) -> torch.nn.Module:
    """Seeded random weights with peaked, prompt-dependent logits (not near-uniform ones)."""
    generator = torch.Generator().manual_seed(seed)

    def noise(shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=generator)

    with torch.no_grad():
        for child in module.modules():
            for name, p in child.named_parameters(recurse=False):
                if isinstance(child, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                    p.copy_(1 + 0.1 * noise(p.shape) if name == "weight" else 0.1 * noise(p.shape))
                elif name == "bias":
                    p.copy_(0.1 * noise(p.shape))
                else:
                    fan_in = p.shape[1:].numel() if p.dim() > 1 and not isinstance(child, torch.nn.Embedding) else 1
                    p.copy_(noise(p.shape) * std / fan_in**0.5)
    return module.eval()


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
