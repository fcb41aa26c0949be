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
   are stretched to the blob's bounding box (intersection over union).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

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


def best_shape(blob: np.ndarray) -> str:
    """The shape template with the highest IoU against `blob`, both in the blob's box."""
    rows, cols = np.nonzero(blob)
    crop = blob[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]  # (h, w)
    height, width = crop.shape
    scores = {}
    for shape in SHAPES:
        template = Image.fromarray(shape_template(shape).astype(np.uint8) * 255)
        stretched = np.asarray(template.resize((width, height), Image.Resampling.BILINEAR)) >= 128
        scores[shape] = (stretched & crop).sum() / max((stretched | crop).sum(), 1)
    return max(scores, key=scores.get)


def detect(image, geometry: Geometry = GEOMETRY) -> Detection:
    """Read background, object colour, position, shape and size from one picture
    (`geometry`: the data set's object sizes, which decide what counts as large)."""
    image = to_uint8_image(image)
    labels = palette_labels(image)  # (H, W)
    border = np.concatenate([labels[:2].ravel(), labels[-2:].ravel(), labels[:, :2].ravel(), labels[:, -2:].ravel()])
    background_id = int(np.bincount(border, minlength=len(PALETTE_NAMES)).argmax())
    counts = np.bincount(labels.ravel(), minlength=len(PALETTE_NAMES))
    colour_pixels = {
        name: int(counts[i]) for i, name in enumerate(PALETTE_NAMES)
        if i != background_id and name in OBJECT_COLOURS and counts[i] >= MIN_OBJECT_PIXELS
    }
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
        shape=best_shape(blob) if blob.sum() >= MIN_OBJECT_PIXELS else None,
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
