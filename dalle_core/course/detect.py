"""Reading colour, position, shape and size back from the pixels of a 64x64 picture.

This is the course model's ruler: "does the picture show a red circle at the top
left?" is answered here, for generated images whose captions we know, so that the
effect of temperature and super-conditioning can be counted rather than eyeballed.

The steps, each simple enough to check by hand:

1. every pixel gets the name of its nearest palette colour (RGB distance);
2. the background is the most common colour along the border;
3. the object colour is the most common non-background colour (the data set keeps
   the primary object the largest);
4. its largest 4-connected blob gives the position (centre of its bounding box on
   the 3x3 grid) and the size (bounding-box side);
5. the shape is the data set's shape template that best overlaps the blob once both
   are stretched to the blob's bounding box (intersection over union); the shapes with
   points (`SOFT_SHAPES`: triangle, cross, star) are tried twice, sharp as the data set
   draws them and softened as the course VQGAN draws them (blurred by `SOFT_BLUR`
   pixels, then cut at half). Squares stay sharp: a softened square is a round-cornered
   one, which a circle cut by the picture's edge fits as well as a circle does;
6. circles and squares must be solid: a blob that fills less of its convex hull than
   `MIN_SOLIDITY` says has notches between points, so it is a star, a cross or a
   triangle, however round or square its outline.

Steps 5 and 6 come from 240 generated pictures labelled by eye
(`dalle_core.course.labelled`): the VQGAN's 4x4-pixel tokens blunt a star's points
and fill the notches between them, so against the sharp templates alone a blunt star
overlapped the circle best (15 of 35 stars read as circles). The labelled circles fill
at least 0.89 of their hull and the squares at least 0.84; the stars and crosses that
read as circles filled at most 0.80.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image, ImageFilter

from .data import (
    BACKGROUND_COLOURS,
    CELL_CENTRES,
    GEOMETRY,
    OBJECT_COLOURS,
    POSITIONS,
    SHAPES,
    Geometry,
    SceneRecord,
    shape_template,
)

PALETTE_NAMES = tuple(dict.fromkeys(list(OBJECT_COLOURS) + list(BACKGROUND_COLOURS)))
PALETTE = np.array(
    [OBJECT_COLOURS.get(name, BACKGROUND_COLOURS.get(name)) for name in PALETTE_NAMES], dtype=np.float32
)  # (P, 3)
MIN_OBJECT_PIXELS = 12  # fewer pixels of a colour than this are edge blends or noise
SOFT_BLUR = 1.5  # pixels: the Gaussian blur that turns a sharp template into the VQGAN's soft version
SOFT_SHAPES = ("triangle", "cross", "star")  # the shapes whose points the VQGAN blunts
# blob area / convex hull area below which a blob is not this shape; the labelled circles fill at
# least 0.89 of their hull, the labelled squares 0.84, a blunt star or cross 0.5-0.86
MIN_SOLIDITY = {"circle": 0.85, "square": 0.8}


@dataclass(frozen=True)
class Detection:
    """What the detector reads from one picture; `None` where it finds no object."""

    background: str
    colour: str | None
    position: str | None
    shape: str | None
    size: str | None
    colour_pixels: dict[str, int] = field(default_factory=dict)  # object colour -> pixel count


def to_uint8_image(image) -> np.ndarray:
    """Accept (64, 64, 3) uint8 / float 0..255 arrays or tensors, or a PIL image -> uint8 array."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected one RGB image (H, W, 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image


def palette_labels(image: np.ndarray) -> np.ndarray:
    """Index into PALETTE_NAMES of every pixel's nearest palette colour: (H, W, 3) -> (H, W)."""
    pixels = image.reshape(-1, 3).astype(np.float32)  # (H*W, 3)
    distances = ((pixels[:, None, :] - PALETTE[None, :, :]) ** 2).sum(-1)  # (H*W, P)
    return distances.argmin(1).reshape(image.shape[:2])  # (H, W)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean mask (breadth-first flood fill)."""
    height, width = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best: list[tuple[int, int]] = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start] = True
        region, queue = [], deque([start])
        while queue:
            y, x = queue.popleft()
            region.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        if len(region) > len(best):
            best = region
    out = np.zeros_like(mask, dtype=bool)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def nearest_position(x: float, y: float, size: int = 64) -> str:
    """Grid cell whose centre is nearest to pixel (x, y), per axis."""
    centres = np.array(CELL_CENTRES) * size / 64
    col, row = int(np.abs(centres - x).argmin()), int(np.abs(centres - y).argmin())
    return next(name for name, cell in POSITIONS.items() if cell == (col, row))


@cache
def shape_mask(shape: str, width: int, height: int, blur: float = 0.0) -> np.ndarray:
    """`shape`'s template as a boolean (height, width) mask filling that box; with `blur` > 0,
    first softened as the VQGAN softens it: Gaussian blur of `blur` pixels at this size, cut
    at half, cropped to what is left (corners round, points shrink, notches fill)."""
    template = Image.fromarray(shape_template(shape).astype(np.uint8) * 255)
    if blur > 0:
        scale = 4  # blur a 4x larger copy, so the cut is smooth
        pad = int(3 * blur * scale) + 2
        canvas = Image.new("L", (width * scale + 2 * pad, height * scale + 2 * pad), 0)
        canvas.paste(template.resize((width * scale, height * scale), Image.Resampling.BILINEAR), (pad, pad))
        soft = np.asarray(canvas.filter(ImageFilter.GaussianBlur(blur * scale))) >= 128
        rows, cols = np.nonzero(soft)
        if rows.size:  # a box a few pixels thin blurs away entirely: then the sharp template
            soft = soft[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]  # (h', w'): what is left
            template = Image.fromarray(soft.astype(np.uint8) * 255)
    return np.asarray(template.resize((width, height), Image.Resampling.BILINEAR)) >= 128


def solidity(blob: np.ndarray) -> float:
    """Area of `blob` over the area of its convex hull (pixels as unit squares): 1 for a
    filled convex shape, about 0.6 for the data set's stars, 0.7 for its crosses."""
    rows = np.nonzero(blob.any(1))[0]
    corners = []
    for y in rows:  # each row's outermost pixels, as the corners of their squares
        xs = np.nonzero(blob[y])[0]
        corners += [(xs[0], y), (xs[0], y + 1), (xs[-1] + 1, y), (xs[-1] + 1, y + 1)]
    return float(blob.sum()) / max(_hull_area(corners), 1.0)


def _hull_area(points: list[tuple[int, int]]) -> float:
    """Area of the convex hull of integer points (Andrew's monotone chain, then the shoelace formula)."""
    points = sorted(set(points))

    def turn(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    hull: list[tuple[int, int]] = []
    for sweep in (points, points[::-1]):  # lower half, then upper half
        start = len(hull)
        for p in sweep:
            while len(hull) >= start + 2 and turn(hull[-2], hull[-1], p) <= 0:
                hull.pop()
            hull.append(p)
        hull.pop()  # each half's last point starts the other half
    xs, ys = np.array(hull, dtype=np.float64).T
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))


def shape_scores(blob: np.ndarray, soft: bool = True) -> dict[str, float]:
    """Each shape's best IoU with `blob`: its sharp template, or (with `soft`, for the shapes
    with points, `SOFT_SHAPES`) its VQGAN-soft one, stretched to the blob's bounding box."""
    rows, cols = np.nonzero(blob)
    crop = blob[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]  # (h, w)
    height, width = crop.shape
    scores = {}
    for shape in SHAPES:
        blurs = (0.0, SOFT_BLUR) if soft and shape in SOFT_SHAPES else (0.0,)
        scores[shape] = max((mask & crop).sum() / max((mask | crop).sum(), 1)
                            for mask in (shape_mask(shape, width, height, blur) for blur in blurs))
    return scores


def best_shape(blob: np.ndarray, soft: bool = True) -> str:
    """The shape whose template overlaps `blob` best; with `soft` (steps 5 and 6 above) the
    soft templates count too, and a blob that is not solid enough is no circle or square."""
    scores = shape_scores(blob, soft)
    if soft:
        fill = solidity(blob)
        scores = {shape: score for shape, score in scores.items() if fill >= MIN_SOLIDITY.get(shape, 0.0)}
    return max(scores, key=scores.get)


def _object_pixels(image: np.ndarray) -> tuple[np.ndarray, int, dict[str, int]]:
    """Steps 1-3: palette labels (H, W), the background's palette index, object colour -> pixel count."""
    labels = palette_labels(image)  # (H, W)
    border = np.concatenate([labels[:2].ravel(), labels[-2:].ravel(), labels[:, :2].ravel(), labels[:, -2:].ravel()])
    background_id = int(np.bincount(border, minlength=len(PALETTE_NAMES)).argmax())
    counts = np.bincount(labels.ravel(), minlength=len(PALETTE_NAMES))
    colour_pixels = {
        name: int(counts[i]) for i, name in enumerate(PALETTE_NAMES)
        if i != background_id and name in OBJECT_COLOURS and counts[i] >= MIN_OBJECT_PIXELS
    }
    return labels, background_id, colour_pixels


def object_blob(image) -> np.ndarray | None:
    """The boolean (H, W) mask `detect` reads position, size and shape from: the largest blob
    of the object colour; None where it finds no object."""
    labels, _, colour_pixels = _object_pixels(to_uint8_image(image))
    if not colour_pixels:
        return None
    return largest_component(labels == PALETTE_NAMES.index(max(colour_pixels, key=colour_pixels.get)))


def detect(image, geometry: Geometry = GEOMETRY, soft: bool = True) -> Detection:
    """Read background, object colour, position, shape and size from one picture
    (`geometry`: the data set's object sizes, which decide what counts as large;
    `soft=False`: the shape from the sharp templates alone, as the detector read before
    it was checked against generated pictures; colour, position and size are the same)."""
    image = to_uint8_image(image)
    labels, background_id, colour_pixels = _object_pixels(image)
    background = PALETTE_NAMES[background_id]
    if not colour_pixels:
        return Detection(background, None, None, None, None, colour_pixels)
    colour = max(colour_pixels, key=colour_pixels.get)
    blob = largest_component(labels == PALETTE_NAMES.index(colour))
    rows, cols = np.nonzero(blob)
    x, y = (cols.min() + cols.max()) / 2, (rows.min() + rows.max()) / 2
    side = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    return Detection(
        background=background,
        colour=colour,
        position=nearest_position(x, y, image.shape[1]),
        shape=best_shape(blob, soft) if blob.sum() >= MIN_OBJECT_PIXELS else None,
        size="large" if side >= geometry.large_side else "small",
        colour_pixels=colour_pixels,
    )


def detector_accuracy(
    images: np.ndarray, records: list[SceneRecord], geometry: Geometry = GEOMETRY
) -> dict[str, float]:
    """Share of pictures where the detector reads the primary object's attributes right."""
    hits = {"background": 0, "colour": 0, "position": 0, "shape": 0, "size": 0}
    for image, record in zip(images, records):
        found = detect(image, geometry)
        truth = record.primary
        hits["background"] += found.background == record.background
        hits["colour"] += found.colour == truth.colour
        hits["position"] += found.position == truth.position
        hits["shape"] += found.shape == truth.shape
        hits["size"] += found.size == truth.size
    return {name: count / max(len(records), 1) for name, count in hits.items()}
