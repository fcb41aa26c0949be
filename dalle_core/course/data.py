"""Synthetic captioned shapes: the data set the course model is trained on.

Every example is drawn from a seed and an index alone (no files, no network), so the
same `(seed, index)` always gives the same 64x64 picture and the same caption, and any
example can be made on its own without drawing the ones before it.

A scene is one object, or two (a larger *primary* object and a small second one on the
far side of the picture). Its attributes are kept in a `SceneRecord`, which is what the
attribute detector (`dalle_core.course.detect`) is checked against. The palette is chosen so
that colours stay far apart in RGB: a detector, and a learner, can read them back from
pixels even after the VQGAN has smudged them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4  # draw 4x larger, then shrink: smooth edges without blur

SHAPES = ("circle", "square", "triangle", "cross", "star")
OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 225),
    "yellow": (245, 220, 30),
    "purple": (150, 40, 185),
    "orange": (250, 135, 15),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "light blue": (170, 210, 240),
}
SIZES = ("small", "large")
# The 3x3 grid: (column, row) of each named cell, 0 = left / top.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0),
    "top": (1, 0),
    "top right": (2, 0),
    "left": (0, 1),
    "centre": (1, 1),
    "right": (2, 1),
    "bottom left": (0, 2),
    "bottom": (1, 2),
    "bottom right": (2, 2),
}
CELL_CENTRES = (16, 32, 48)  # pixel centre of column / row 0, 1, 2
RADII = {"small": 11, "large": 16}  # half the object's extent in pixels
# The second object is drawn at radius 6, so that even beside a large star (the shape with
# the least area) it covers fewer pixels than the primary object and never touches it.
SECOND_RADIUS = 6


@dataclass(frozen=True)
class Geometry:
    """How big objects are drawn (pixels), in one place for the data, the VQGAN's loss and
    the detector. Small objects have radius 11 so that a small star's points are about one
    4x4-pixel token wide on the 16x16 token grid; large ones 16, so that a large square
    (side 1.8 r, at least 27 px) still reads as larger than a small circle (at most 24 px).
    docs/course-model.md says how these sizes were chosen."""

    small_radius: int = RADII["small"]
    large_radius: int = RADII["large"]
    second_radius: int = SECOND_RADIUS
    # the detector calls a blob "large" from this bounding-box side on (between the sizes)
    large_side: int = 27
    # at most this many pixels of an object may lie outside the picture (None: no limit):
    # a large circle cut on two sides in a corner would read back as a square
    max_overhang: float | None = 2.5

    def radius(self, size: str) -> int:
        return {"small": self.small_radius, "large": self.large_radius}[size]


GEOMETRY = Geometry()

# Wording. Each list holds interchangeable phrases; the first is the plain one that
# `plain_caption` (used for evaluation prompts) picks.
SHAPE_WORDS = {
    "circle": ["circle", "disc", "round shape", "dot"],
    "square": ["square", "box", "block"],
    "triangle": ["triangle", "triangular shape"],
    "cross": ["cross", "plus sign", "plus"],
    "star": ["star", "five pointed star"],
}
COLOUR_WORDS = {
    "red": ["red"], "green": ["green"], "blue": ["blue"], "yellow": ["yellow"],
    "purple": ["purple", "violet"], "orange": ["orange"], "white": ["white"], "black": ["black"],
}
BACKGROUND_WORDS = {
    "white": ["white"], "black": ["black"], "gray": ["gray", "grey"], "light blue": ["light blue", "pale blue"],
}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big", "huge"]}
POSITION_PHRASES = {
    "top left": ["in the top left corner", "at the top left", "in the upper left"],
    "top": ["at the top", "in the top middle", "at the top centre"],
    "top right": ["in the top right corner", "at the top right", "in the upper right"],
    "left": ["on the left", "at the left side", "in the middle left"],
    "centre": ["in the centre", "in the middle", "at the center"],
    "right": ["on the right", "at the right side", "in the middle right"],
    "bottom left": ["in the bottom left corner", "at the bottom left", "in the lower left"],
    "bottom": ["at the bottom", "in the bottom middle", "at the bottom centre"],
    "bottom right": ["in the bottom right corner", "at the bottom right", "in the lower right"],
}
BACKGROUND_PHRASES = ["on a {} background", "on {}", "against a {} background", "with a {} background"]


@dataclass(frozen=True)
class ObjectRecord:
    """One drawn object: what it is and exactly where it was drawn (pixels)."""

    shape: str
    colour: str
    size: str
    position: str
    centre: tuple[int, int]  # (x, y) in pixels, after jitter
    radius: int


@dataclass(frozen=True)
class SceneRecord:
    """Everything known about one example; `objects[0]` is the primary object."""

    seed: int
    index: int
    objects: tuple[ObjectRecord, ...]
    background: str
    caption: str
    named_colour: str  # the primary object's colour as the caption says it (see make_scene)

    @property
    def primary(self) -> ObjectRecord:
        return self.objects[0]


# ---------------------------------------------------------------------------- drawing

def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon corners of `shape` centred at (cx, cy) with half extent r (not circles)."""
    if shape == "square":
        s = r * 0.9  # a square of side 2r looks bigger than a circle of radius r
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":  # pointing up, filling the same box as the circle
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "cross":  # a plus sign with arms a third of its width
        a = r / 3
        return [
            (cx - a, cy - r), (cx + a, cy - r), (cx + a, cy - a), (cx + r, cy - a),
            (cx + r, cy + a), (cx + a, cy + a), (cx + a, cy + r), (cx - a, cy + r),
            (cx - a, cy + a), (cx - r, cy + a), (cx - r, cy - a), (cx - a, cy - a),
        ]
    if shape == "star":  # five points, inner radius 0.45 r, first point straight up
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        return [(cx + rad * np.cos(t), cy - rad * np.sin(t)) for rad, t in zip(radii, angles)]
    raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    """Draw one filled shape on a PIL canvas (coordinates in the canvas's pixels)."""
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_shape_points(shape, cx, cy, r), fill=fill)


def render(scene: SceneRecord) -> np.ndarray:
    """The scene's picture: uint8 array (64, 64, 3)."""
    big = IMAGE_SIZE * SUPERSAMPLE
    canvas = Image.new("RGB", (big, big), BACKGROUND_COLOURS[scene.background])
    draw = ImageDraw.Draw(canvas)
    # Draw the second object first so the primary one is never covered.
    for obj in reversed(scene.objects):
        cx, cy = ((c + 0.5) * SUPERSAMPLE for c in obj.centre)
        draw_shape(draw, obj.shape, cx, cy, obj.radius * SUPERSAMPLE, OBJECT_COLOURS[obj.colour])
    small = canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8)


@cache
def shape_template(shape: str, resolution: int = 64) -> np.ndarray:
    """A boolean mask of `shape` filling a `resolution` square, cropped to its own bounding box.

    The detector compares a found blob against these, scaled to the blob's box.
    """
    big = resolution * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw_shape(ImageDraw.Draw(canvas), shape, big / 2, big / 2, big / 2 - 1, 255)
    mask = np.asarray(canvas.resize((resolution, resolution), Image.Resampling.BOX)) >= 128
    rows, cols = np.nonzero(mask)
    return mask[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]  # (h, w) crop


# ---------------------------------------------------------------------------- scenes

def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _far_positions(position: str) -> list[str]:
    """Cells two steps away in a row or column: a small object there never touches
    a large one at `position`."""
    col, row = POSITIONS[position]
    return [name for name, (c, r) in POSITIONS.items() if abs(c - col) == 2 or abs(r - row) == 2]


def _make_object(
    rng: np.random.Generator, shape: str, colour: str, size: str, position: str, base_radius: int,
    max_overhang: float | None = None,
) -> ObjectRecord:
    col, row = POSITIONS[position]
    jitter = rng.integers(-2, 3, size=2)  # small offsets so positions are regions, not points
    radius = base_radius + int(rng.integers(-1, 2))
    centre = (CELL_CENTRES[col] + int(jitter[0]), CELL_CENTRES[row] + int(jitter[1]))
    if max_overhang is not None:  # pixel c spans c..c+1, so its centre is c + 0.5 from the left edge
        room = min(min(c + 0.5, IMAGE_SIZE - c - 0.5) for c in centre)
        radius = min(radius, int(room + max_overhang))
    return ObjectRecord(shape, colour, size, position, centre, radius)


def make_scene(
    seed: int, index: int, two_object_share: float = 0.25, wrong_colour_share: float = 0.0,
    geometry: Geometry = GEOMETRY,
) -> SceneRecord:
    """The `index`-th example of data set `seed`: attributes, then a caption for them.

    With `wrong_colour_share` > 0 that share of captions names a wrong colour for the
    primary object, as web alt-text often is wrong (the shipped model was trained with 0.2,
    `train.TrainSettings`); the draw comes from a stream of its own, so pictures do not
    depend on it and the other captions stay word for word the same.
    """
    rng = np.random.default_rng([seed, index])  # one independent stream per example
    background = _pick(rng, list(BACKGROUND_COLOURS))
    colours = [c for c in OBJECT_COLOURS if c != background]
    position = _pick(rng, list(POSITIONS))
    # A second object only fits beside a large one placed off centre; it is always small,
    # so the primary object's colour covers the most pixels.
    has_second = position != "centre" and rng.random() < two_object_share
    size = "large" if has_second else _pick(rng, SIZES)
    primary = _make_object(
        rng, _pick(rng, SHAPES), _pick(rng, colours), size, position, geometry.radius(size), geometry.max_overhang
    )
    objects = [primary]
    if has_second:
        second_colour = _pick(rng, [c for c in colours if c != primary.colour])
        objects.append(
            _make_object(
                rng, _pick(rng, SHAPES), second_colour, "small", _pick(rng, _far_positions(position)),
                geometry.second_radius, geometry.max_overhang,
            )
        )
    named_colour = primary.colour
    if wrong_colour_share > 0:
        noise = np.random.default_rng([seed, index, 1])
        if noise.random() < wrong_colour_share:
            named_colour = _pick(noise, [c for c in colours if c not in {o.colour for o in objects}])
    caption = make_caption(rng, objects, background, named_colour)
    return SceneRecord(seed, index, tuple(objects), background, caption, named_colour)


def make_caption(
    rng: np.random.Generator, objects: Sequence[ObjectRecord], background: str, named_colour: str | None = None
) -> str:
    """A caption in one of many wordings: synonyms, optional articles and attributes,
    attributes in varying order. Colour and shape are always said; the primary object's
    colour is said as `named_colour` when given."""
    colours = [named_colour or objects[0].colour] + [obj.colour for obj in objects[1:]]
    parts = [
        _describe(rng, obj, colour, say_position=len(objects) > 1 or rng.random() < 0.85)
        for obj, colour in zip(objects, colours)
    ]
    text = " and ".join(parts)
    if rng.random() < 0.15:
        text = _pick(rng, ["there is ", "a picture of ", "an image of ", "a drawing of "]) + text
    if rng.random() < 0.6:
        colour = _pick(rng, BACKGROUND_WORDS[background])
        text += " " + _pick(rng, BACKGROUND_PHRASES).format(colour)
    return text


def _describe(rng: np.random.Generator, obj: ObjectRecord, colour: str, say_position: bool) -> str:
    colour = _pick(rng, COLOUR_WORDS[colour])
    shape = _pick(rng, SHAPE_WORDS[obj.shape])
    size = _pick(rng, SIZE_WORDS[obj.size]) if rng.random() < 0.7 else ""
    style = rng.random()
    if style < 0.6:
        words = [size, colour, shape]
    elif style < 0.8:
        words = [colour, size, shape]
    else:
        words = [size, shape, "in", colour] if rng.random() < 0.5 else [size, shape, "coloured", colour]
    noun_phrase = " ".join(w for w in words if w)
    article = _pick(rng, ["a", "a", "one", ""])
    if article == "a" and noun_phrase[0] in "aeiou":
        article = "an"
    noun_phrase = f"{article} {noun_phrase}".strip()
    if not say_position:
        return noun_phrase
    where = _pick(rng, POSITION_PHRASES[obj.position])
    if rng.random() < 0.2:
        return f"{where} {noun_phrase}"
    return f"{noun_phrase} {where}"


def plain_caption(shape: str, colour: str, position: str | None = None, size: str | None = None,
                  background: str | None = None) -> str:
    """The plainest wording of a one-object scene, e.g. "a red circle in the top left
    corner": the form evaluation prompts and the course use."""
    words = [w for w in (size, colour, SHAPE_WORDS[shape][0]) if w]
    article = "an" if words[0][0] in "aeiou" else "a"
    text = f"{article} {' '.join(words)}"
    if position is not None:
        text += " " + POSITION_PHRASES[position][0]
    if background is not None:
        text += f" on a {background} background"
    return text


# ---------------------------------------------------------------------------- batches

def make_dataset(
    count: int, seed: int = 0, start: int = 0, geometry: Geometry = GEOMETRY
) -> tuple[np.ndarray, list[SceneRecord]]:
    """`count` examples from index `start` on: images uint8 (count, 64, 64, 3) and records."""
    records = [make_scene(seed, i, geometry=geometry) for i in range(start, start + count)]
    images = np.stack([render(r) for r in records]) if records else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    return images, records


def images_to_tensor(images: np.ndarray):
    """uint8 (n, 64, 64, 3) -> float32 torch tensor (n, 3, 64, 64) in 0..1, the VQGAN's input."""
    import torch

    x = torch.from_numpy(images).float() / 255  # (n, 64, 64, 3)
    return x.permute(0, 3, 1, 2).contiguous()  # (n, 3, 64, 64)
