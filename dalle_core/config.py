"""Model sizes, named as min-dalle names them.

One frozen dataclass describes the transformer (encoder + decoder) and one the VQGAN
detokenizer. The presets reproduce DALL·E Mega and Mini exactly; any other size (the
course model, a test model) is the same architecture with other numbers.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

TINY_ROOT = Path(__file__).parent / "assets" / "tiny"  # the shipped course model: config.json and its files


def _check_positive_ints(obj: Any) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, bool) or f.type not in ("int", int) or f.name == "image_start_token":
            continue
        if not isinstance(value, int):
            raise TypeError(f"{type(obj).__name__}.{f.name} must be an int, got {value!r}")
        if value < 1:
            raise ValueError(f"{type(obj).__name__}.{f.name} must be at least 1, got {value}")


@dataclass(frozen=True)
class DalleConfig:
    """Sizes of the DALL·E BART encoder and decoder.

    `image_vocab_count` is the decoder's vocabulary *without* its extra start row:
    `embed_tokens` and `lm_head` have `image_vocab_count + 1` rows, as in min-dalle.
    Only the first `image_code_count` logits are codes the VQGAN can draw; the rest
    (mega has 16415 + 1 = 16416 outputs for 16384 codes) are dropped before sampling.
    """

    layer_count: int = 12
    attention_head_count: int = 16
    embed_count: int = 1024
    glu_embed_count: int = 2730
    text_vocab_count: int = 50264
    image_vocab_count: int = 16384
    text_token_count: int = 64
    image_token_count: int = 256
    image_code_count: int = 16384
    # min-dalle starts every image with 2**14 - 1 = 16383, an ordinary code;
    # dalle-mini's training config says 16384 (the extra row). Configurable.
    image_start_token: int = 16383
    name: str = "custom"

    def __post_init__(self) -> None:
        _check_positive_ints(self)
        if self.image_start_token < 0 or self.image_start_token > self.image_vocab_count:
            raise ValueError(
                f"image_start_token {self.image_start_token} is outside the decoder's "
                f"embedding table (0..{self.image_vocab_count})"
            )
        if self.image_code_count > self.image_vocab_count + 1:
            raise ValueError("image_code_count cannot exceed the lm_head's outputs (image_vocab_count + 1)")
        if self.embed_count % self.attention_head_count:
            raise ValueError(
                f"embed_count {self.embed_count} must be divisible by "
                f"attention_head_count {self.attention_head_count}"
            )
        side = round(self.image_token_count**0.5)
        if side * side != self.image_token_count:
            raise ValueError(f"image_token_count must be a square (a token grid), got {self.image_token_count}")

    @property
    def head_embed_count(self) -> int:
        return self.embed_count // self.attention_head_count

    @property
    def image_token_side(self) -> int:
        """Tokens per side of one image's token grid (16 for mega and mini)."""
        return round(self.image_token_count**0.5)

    @classmethod
    def mega(cls) -> DalleConfig:
        return cls(
            layer_count=24, attention_head_count=32, embed_count=2048, glu_embed_count=4096,
            text_vocab_count=50272, image_vocab_count=16415, name="mega",
        )

    @classmethod
    def mini(cls) -> DalleConfig:
        return cls(
            layer_count=12, attention_head_count=16, embed_count=1024, glu_embed_count=2730,
            text_vocab_count=50264, image_vocab_count=16384, name="mini",
        )

    @classmethod
    def tiny(cls) -> DalleConfig:
        """The course model's sizes, the one place they are written: `python -m dalle_core train`
        builds this (with the vocabulary its BPE learned) and the shipped config.json equals it
        (tested). See docs/course-model.md."""
        # 16x16 = 256 image tokens, as DALL·E Mini and Mega draw, out of VQGanConfig.tiny()'s 1024 codes
        return cls(
            layer_count=3, attention_head_count=4, embed_count=128, glu_embed_count=256,
            text_vocab_count=271, image_vocab_count=1024, image_token_count=256,
            image_code_count=1024, image_start_token=1024, name="tiny",
        )

    @classmethod
    def from_name(cls, name: str) -> DalleConfig:
        presets = {"mega": cls.mega, "mini": cls.mini, "tiny": cls.tiny}
        if name not in presets:
            raise ValueError(f"unknown model {name!r}; choose one of {sorted(presets)}")
        return presets[name]()

    def replace(self, **changes: Any) -> DalleConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DalleConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DalleConfig fields {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class VQGanConfig:
    """Sizes of the VQGAN detokenizer.

    `channel_counts[i]` is the width of `decoder.up[i]`; the levels run from the last
    (widest, where tokens enter) to level 0 (narrowest, next to the pixels). Every level
    but 0 upsamples by 2, so one token covers `2 ** (len(channel_counts) - 1)` pixels.
    """

    vocab_count: int = 2**14
    embed_count: int = 2**8
    channel_counts: tuple[int, ...] = (128, 128, 256, 256, 512)
    attention_levels: tuple[int, ...] = (4,)
    block_count: int = 3  # ResnetBlocks per level
    group_count: int = 32  # GroupNorm groups
    name: str = "dalle"

    def __post_init__(self) -> None:
        _check_positive_ints(self)
        object.__setattr__(self, "channel_counts", tuple(self.channel_counts))
        object.__setattr__(self, "attention_levels", tuple(self.attention_levels))
        if not self.channel_counts:
            raise ValueError("channel_counts needs at least one level")
        for c in self.channel_counts + (self.embed_count,):
            if c % self.group_count:
                raise ValueError(f"channel count {c} is not divisible by group_count {self.group_count}")
        for level in self.attention_levels:
            if not 0 <= level < len(self.channel_counts):
                raise ValueError(f"attention level {level} does not exist")

    @property
    def downsample_factor(self) -> int:
        """Pixels per token along one side (16 for DALL·E's VQGAN)."""
        return 2 ** (len(self.channel_counts) - 1)

    @classmethod
    def dalle(cls) -> VQGanConfig:
        return cls()

    @classmethod
    def tiny(cls) -> VQGanConfig:
        """The course model's VQGAN: 64x64 pixels <-> 16x16 tokens (factor 4: three levels) out of
        1024 codes of 32 dims (equals the shipped config.json, tested; docs/course-model.md says
        why these sizes)."""
        return cls(
            vocab_count=1024, embed_count=32, channel_counts=(16, 32, 64),
            attention_levels=(2,), block_count=1, group_count=8, name="tiny",
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["channel_counts"] = list(self.channel_counts)
        data["attention_levels"] = list(self.attention_levels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VQGanConfig:
        return cls(**data)


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from a UTF-8 file (a config.json, a vocab.json); anything else is an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # UnicodeDecodeError or JSONDecodeError
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def load_model_config(root: str | Path = TINY_ROOT) -> tuple[DalleConfig, VQGanConfig]:
    """The sizes of a model saved with its config.json (the course model)."""
    path = Path(root) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; rebuild the course model with `python -m dalle_core train`")
    data = read_json(path)
    return DalleConfig.from_dict(data["dalle"]), VQGanConfig.from_dict(data["vqgan"])
