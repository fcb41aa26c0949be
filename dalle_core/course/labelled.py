"""Generated pictures labelled by eye: the set the detector is validated on.

The detector (`dalle_core.course.detect`) reads the data set's own pictures perfectly,
but the course model's pictures are not the data set's: the VQGAN softens corners and
points. So 240 pictures of the shipped model were labelled by a person, by eye, and the
labels are kept as data in `labels/generated.json`:

    prompt, asked (shape, colour, position), wording, s, T, top-k, seed,
    image_tokens (one code per token, base64 of little-endian uint16), their digest,
    seen: what the person saw (shape or "unclear", colour or "none", position or "none")

Picture k is `MinDalle().generate_image_tokens(prompt, seed, 1, T, top_k, s)` of the shipped
model (one prompt per loop, so any picture can be redrawn on its own); the stored tokens
let the detector be re-measured without generating.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import OBJECT_COLOURS, POSITIONS, SHAPES, ObjectRecord, _describe, plain_caption

LABELS_PATH = Path(__file__).parent / "labels" / "generated.json"
FACTORS = (1.0, 4.0, 16.0)
PER_FACTOR = 80  # pictures per supercondition factor
TEMPERATURE, TOP_K = 1.0, 64
UNCLEAR = "unclear"  # a shape label: no shape a person would name
NONE = "none"  # a colour or position label: no object


@dataclass(frozen=True)
class LabelledPicture:
    """One generated picture: how it was made, and what a person saw in it."""

    prompt: str
    asked: tuple[str, str, str]  # (shape, colour, position) the prompt names
    wording: str  # "plain" (data.plain_caption) or "other"
    supercondition_factor: float
    temperature: float
    top_k: int
    seed: int
    image_tokens: tuple[int, ...]  # (256,) the codes the model drew
    tokens_digest: str  # dalle_core.lab.exercises.digest of image_tokens
    seen: tuple[str, str, str]  # (shape, colour, position) a person labelled by eye


def labelled_set_spec() -> list[dict]:
    """The 240 pictures' prompts and settings (no tokens, no labels).

    80 per factor s in {1, 4, 16}: combination i = 7k + 120 j (mod 360) of (shape, colour,
    position) = (i mod 5, i mod 8, i mod 9), so each factor holds every shape 16 times and
    every colour 10 times, every position 8 or 9 times, and no combination twice in the set.
    Ten prompts per factor are in another wording drawn by the data set's own `_describe`.
    """
    colours, positions = list(OBJECT_COLOURS), list(POSITIONS)
    rng = np.random.default_rng(2024)  # the other wordings' draws
    spec = []
    for j, factor in enumerate(FACTORS):
        for k in range(PER_FACTOR):
            i = (7 * k + 120 * j) % 360
            shape, colour, position = SHAPES[i % 5], colours[i % 8], positions[i % 9]
            if k % 8 == (k // 8) % 8:  # 10 of the 80, every shape and colour among them
                size = ("small", "large")[int(rng.integers(2))]
                obj = ObjectRecord(shape, colour, size, position, (0, 0), 0)
                prompt, wording = _describe(rng, obj, colour, say_position=True), "other"
            else:
                prompt, wording = plain_caption(shape, colour, position), "plain"
            spec.append({
                "prompt": prompt, "asked": [shape, colour, position], "wording": wording,
                "supercondition_factor": factor, "temperature": TEMPERATURE, "top_k": TOP_K,
                "seed": 1000 + len(spec),
            })
    return spec


def encode_tokens(image_tokens: torch.Tensor) -> str:
    """(256,) codes -> base64 of little-endian uint16 (what the JSON stores)."""
    return base64.b64encode(image_tokens.numpy().astype("<u2").tobytes()).decode("ascii")


def decode_tokens(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in np.frombuffer(base64.b64decode(text), dtype="<u2"))


def load_labelled_set(path: str | Path = LABELS_PATH) -> list[LabelledPicture]:
    """The labelled pictures, in the order of `labelled_set_spec()`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; it ships with dalle_core (course/labels/)")
    rows = json.loads(path.read_text(encoding="utf-8"))["pictures"]
    return [
        LabelledPicture(
            prompt=row["prompt"], asked=tuple(row["asked"]), wording=row["wording"],
            supercondition_factor=row["supercondition_factor"], temperature=row["temperature"],
            top_k=row["top_k"], seed=row["seed"], image_tokens=decode_tokens(row["image_tokens"]),
            tokens_digest=row["tokens_digest"], seen=tuple(row["seen"]),
        )
        for row in rows
    ]


def labelled_images(model, pictures: list[LabelledPicture]) -> torch.Tensor:
    """The pictures' pixels (n, 64, 64, 3), floats 0..255, decoded from their stored tokens, 60 at a
    time (the VQGAN's activations for all 240 at once would double a notebook kernel's memory)."""
    from .batch_generation import decode_images

    image_tokens = torch.tensor([p.image_tokens for p in pictures], dtype=torch.long)  # (n, 256)
    return decode_images(model, image_tokens, batch_size=60)


def agreement(found: list, pictures: list[LabelledPicture]) -> dict[str, float]:
    """Share of pictures where a reading (`detect`'s Detection) says what the person saw:
    shape over the pictures with a shape a person would name (not "unclear"), colour and
    position over all."""
    named = [(f, p) for f, p in zip(found, pictures) if p.seen[0] != UNCLEAR]
    return {
        "shape": float(np.mean([f.shape == p.seen[0] for f, p in named])),
        "colour": float(np.mean([f.colour == p.seen[1] for f, p in zip(found, pictures)])),
        "position": float(np.mean([f.position == p.seen[2] for f, p in zip(found, pictures)])),
    }
