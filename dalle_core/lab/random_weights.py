"""Random checkpoints in min-dalle's file layout, for tests and the benchmark.

The published weights are gigabytes and cannot be downloaded in CI, but every code path
that reads them (the layout, strict loading, float16 files, the whole generation) can be
exercised with files of the same names, keys and shapes filled with seeded noise. The noise
is scaled so that logits are peaked and depend on the prompt (not near-uniform), which
keeps sampled tokens sensitive to any difference between two implementations.
"""
from __future__ import annotations

import json
import string
from pathlib import Path

import torch

from ..config import DalleConfig
from ..decoder import DalleBartDecoder
from ..encoder import DalleBartEncoder
from ..tokenizer import WORD_START
from ..vqgan import VQGanDetokenizer
from ..weights import model_files


def randomize(module: torch.nn.Module, seed: int, std: float = 1.0) -> torch.nn.Module:
    """Seeded random weights with peaked, prompt-dependent logits (not near-uniform ones).

    The noise is drawn where the module lies (a GPU draws Mega's 2.6 billion numbers in a
    blink); on the CPU they are the same numbers on every machine, for a given seed."""
    device = next(module.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)

    def noise(shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=device)

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


def write_tokenizer(folder: Path) -> None:
    """vocab.json and merges.txt of `make_vocab()`, in min-dalle's format."""
    vocab, merges = make_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def write_random_model(
    models_root: str | Path, model: str = "mini", dtype: torch.dtype = torch.float16, device: str = "cpu",
) -> Path:
    """Random DALL·E Mini or Mega checkpoints (`dtype` for the transformer, as the published
    float16 files; the VQGAN in float32) in min-dalle's layout under `models_root`."""
    if model not in ("mini", "mega"):
        raise ValueError(f"model must be 'mini' or 'mega', got {model!r}")
    files = model_files(models_root, model)
    write_tokenizer(files.vocab.parent)
    config = DalleConfig.from_name(model)
    for name, cls, path in (("encoder", DalleBartEncoder, files.encoder), ("decoder", DalleBartDecoder, files.decoder)):
        with torch.device(device):
            module = randomize(cls(config), seed=len(name))
        torch.save({k: v.to(dtype).cpu() for k, v in module.state_dict().items()}, path)
        del module
    files.detoker.parent.mkdir(parents=True, exist_ok=True)
    torch.save(randomize(VQGanDetokenizer(), seed=9).state_dict(), files.detoker)
    return Path(models_root)
