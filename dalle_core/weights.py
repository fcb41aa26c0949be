"""Where the checkpoint files live, and loading them strictly.

min-dalle's layout, kept so that a folder prepared for min-dalle works here unchanged:

    {models_root}/dalle_bart_mega/{vocab.json, merges.txt, encoder.pt, decoder.pt}
    {models_root}/dalle_bart_mini/{vocab.json, merges.txt, encoder.pt, decoder.pt}
    {models_root}/vqgan/detoker.pt

and the course model's, one folder with its sizes beside the files (`python -m dalle_core train`):

    {folder}/{config.json, vocab.json, merges.txt, encoder.pt, decoder.pt, detoker.pt}

min-dalle loads with `strict=False`, so a missing or misnamed tensor silently stays
random. Here every file is loaded strictly into the module `expected_module` builds, and
a mismatch names the file and the keys; `verify` and `convert` check against the same modules.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import DalleConfig, VQGanConfig
from .decoder import DalleBartDecoder
from .encoder import DalleBartEncoder
from .vqgan import VQGanDetokenizer

MODELS = ("mega", "mini")  # the published models
DEFAULT_MODELS_ROOT = "pretrained"  # where `fetch` and `convert` put them unless told otherwise
CHECKPOINTS = {"encoder": DalleBartEncoder, "decoder": DalleBartDecoder, "detoker": VQGanDetokenizer}


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Write a file whole or not at all: the caller writes the path this yields (next to `path`,
    same suffix, so that writers that read the suffix still work), and only a write that
    finished is moved onto `path` (`os.replace`, atomic on one file system). A failed write
    leaves no file behind, and an older `path` stays as it was. Missing parent folders are made."""
    path = Path(path)
    partial = path.with_name(f"{path.stem}.part{path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be used: corrupt, truncated or of another model."""


@dataclass(frozen=True)
class ModelFiles:
    """The files one model needs, at their places: five, and the course model's config.json."""

    vocab: Path
    merges: Path
    encoder: Path
    decoder: Path
    detoker: Path
    config: Path | None = None  # the sizes; None for mega and mini, whose sizes are presets

    def __iter__(self) -> Iterator[Path]:
        paths = (self.vocab, self.merges, self.encoder, self.decoder, self.detoker, self.config)
        return iter(p for p in paths if p is not None)

    def missing(self) -> list[Path]:
        return [p for p in self if not p.is_file()]


def model_files(models_root: str | Path, model: str) -> ModelFiles:
    """The local paths of `model` ("mega" or "mini") in min-dalle's layout."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; the published models are {MODELS}")
    root = Path(models_root)
    dalle = root / f"dalle_bart_{model}"
    return ModelFiles(
        vocab=dalle / "vocab.json",
        merges=dalle / "merges.txt",
        encoder=dalle / "encoder.pt",
        decoder=dalle / "decoder.pt",
        detoker=root / "vqgan" / "detoker.pt",
    )


def tiny_files(folder: str | Path) -> ModelFiles:
    """The local paths of a course model (the shipped one: `config.TINY_ROOT`)."""
    folder = Path(folder)
    names = ("vocab.json", "merges.txt", "encoder.pt", "decoder.pt", "detoker.pt", "config.json")
    return ModelFiles(*(folder / name for name in names))


def fetch_command(model: str, models_root: str | Path) -> str:
    """The command that downloads the missing files of `model`, as error messages quote it."""
    return f"python -m dalle_core fetch --model {model} --models-root {models_root}"


def require_files(files: ModelFiles, model: str) -> None:
    """Raise a FileNotFoundError that lists every missing file and how to get it."""
    missing = files.missing()
    if not missing:
        return
    lines = "\n".join(f"  {p}" for p in missing)
    if model == "tiny":
        advice = ("Reinstall dalle_core for the shipped course model, or rebuild a course model with "
                  f"`python -m dalle_core train --out {files.decoder.parent}`.")
    else:
        advice = (f"Fetch them with `{fetch_command(model, files.detoker.parent.parent)}`, pass "
                  "allow_download=True, or place them by hand (see docs/weights.md).")
    raise FileNotFoundError(f"{len(missing)} file(s) of the {model} model are missing:\n{lines}\n{advice}")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Where to load a model: CUDA when there is a GPU and none was named; an unavailable device is refused."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'mps'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use device='cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for but Apple's MPS is not available; use device='cpu'")
    return device


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint onto the CPU whatever device saved it; a broken file says so."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty; delete it and fetch it again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise CheckpointError(
            f"{path} could not be read ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            "it is probably truncated or corrupt: delete it and fetch it again "
            "(`python -m dalle_core verify` checks every file)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors")
    return state


def expected_module(role: str, config: str | DalleConfig | VQGanConfig) -> nn.Module:
    """The module that the checkpoint `role` ("encoder", "decoder" or "detoker") loads into, built on the
    meta device: its parameter names and shapes without their memory (Mega's take 10 GB in float32).
    `config` gives the sizes, or names a published model ("mega", "mini")."""
    if role not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {role!r}; choose one of {sorted(CHECKPOINTS)}")
    if isinstance(config, str) and config not in MODELS:
        raise ValueError(f"unknown model {config!r}; the published models are {MODELS} (else pass the sizes)")
    if isinstance(config, str):
        config = VQGanConfig.dalle() if role == "detoker" else DalleConfig.from_name(config)
    with torch.device("meta"):
        return CHECKPOINTS[role](config)


def list_differences(header: str, differences: dict[str, list[str]], advice: str) -> str:
    """An error message naming what differs between a file and a model: the header, a line per kind of
    difference (its first 8 items, then how many there are in all), and what to check."""
    lines = [header]
    for title, items in differences.items():
        if items:
            more = [f"... ({len(items)} in all)"] if len(items) > 8 else []
            lines.append(f"  {title}: {', '.join(items[:8] + more)}")
    return "\n".join([*lines, advice])


def layer_norm_defaults(module: nn.Module) -> dict[str, float]:
    """Keys of every LayerNorm parameter and its initial value (scale 1, shift 0).

    DALL·E Mini builds some LayerNorms without a learned scale (flax `use_scale=False`);
    such a norm is saved without its weight, and min-dalle keeps PyTorch's default there.
    The published files are smaller than their full parameter count for this reason.
    """
    defaults: dict[str, float] = {}
    for name, child in module.named_modules():
        if isinstance(child, nn.LayerNorm):
            prefix = f"{name}." if name else ""
            defaults[prefix + "weight"], defaults[prefix + "bias"] = 1.0, 0.0
    return defaults


def check_state_dict(module: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> list[str]:
    """Compare keys and shapes with the module's; raise naming every difference.

    Returns the LayerNorm keys the file leaves out (they take their default values);
    any other missing key is an error.
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    defaults = layer_norm_defaults(module)
    absent = set(expected) - set(state)
    defaulted = sorted(absent & set(defaults))
    missing = sorted(absent - set(defaults))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k}: file {tuple(state[k].shape)}, model {expected[k]}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != expected[k]
    )
    if not (missing or unexpected or wrong):
        return defaulted
    raise CheckpointError(list_differences(
        f"{path} does not fit {type(module).__name__}:",
        {"missing keys": missing, "unexpected keys": unexpected, "wrong shapes": wrong},
        "Is it the file of another model (mega vs mini) or an incomplete download?",
    ))


def check_checkpoint(path: str | Path, role: str, config: str | DalleConfig | VQGanConfig) -> None:
    """Raise a CheckpointError unless the checkpoint at `path` opens and its keys and shapes fit
    `expected_module(role, config)`; reads the file, allocates no module."""
    check_state_dict(expected_module(role, config), read_state_dict(path), path)


def load_module(module: nn.Module, path: str | Path, dtype: torch.dtype, device: str | torch.device) -> nn.Module:
    """Load `path` strictly into `module` (which may live on the meta device).

    Tensors are cast to `dtype` and moved to `device` one by one, each file tensor freed
    as soon as it is converted, and then *assigned*: a module built on the meta device
    never holds random weights, and the peak is about one copy of the model in `dtype`
    (min-dalle holds random weights plus the file's tensors at once).
    """
    state = read_state_dict(path)
    defaulted = check_state_dict(module, state, path)
    for key in list(state):  # convert one tensor at a time and drop the file's copy of it
        tensor = state.pop(key)
        state[key] = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)
        del tensor
    shapes = {k: v.shape for k, v in module.state_dict().items()}
    defaults = layer_norm_defaults(module)
    for key in defaulted:  # a LayerNorm the checkpoint leaves out: its untrained value
        state[key] = torch.full(shapes[key], defaults[key], dtype=dtype, device=device)
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval()
