"""The attribute detector reads the data set's ground truth back from pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dalle_core.course.data import BACKGROUND_COLOURS, make_dataset
from dalle_core.course.detect import (
    detect,
    detector_accuracy,
    largest_component,
    nearest_position,
    shape_mask,
    solidity,
)


def test_accuracy_on_ground_truth():
    images, records = make_dataset(150, seed=11)
    accuracy = detector_accuracy(images, records)
    assert accuracy["colour"] >= 0.98 and accuracy["position"] >= 0.98 and accuracy["background"] == 1.0
    assert accuracy["shape"] >= 0.95 and accuracy["size"] >= 0.95


@pytest.mark.parametrize("seed", [0, 11])
def test_ground_truth_reads_back_exactly(seed):
    """The data's small objects (radius 11) keep the data's promise: every attribute of the primary object
    reads back from the pixels (a second object never outweighs it, large and small stay apart)."""
    images, records = make_dataset(300, seed=seed)
    accuracy = detector_accuracy(images, records)
    assert accuracy == {"background": 1.0, "colour": 1.0, "position": 1.0, "shape": 1.0, "size": 1.0}


def test_accepts_float_tensors_and_blank_images():
    images, _records = make_dataset(1, seed=11)
    as_tensor = torch.from_numpy(images[0]).float()  # MinDalle returns floats 0..255
    assert detect(as_tensor) == detect(images[0])
    blank = np.full((64, 64, 3), BACKGROUND_COLOURS["gray"], dtype=np.uint8)
    found = detect(blank)
    assert found.background == "gray" and found.colour is None and found.shape is None


def test_rejects_non_images():
    with pytest.raises(ValueError, match="RGB"):
        detect(np.zeros((64, 64)))


def test_largest_component_and_positions():
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = True
    mask[4:7, 4:7] = True
    assert largest_component(mask).sum() == 9
    assert nearest_position(16, 16) == "top left" and nearest_position(33, 30) == "centre"
    assert nearest_position(50, 31) == "right"


def test_thin_blobs_and_solidity():
    """A blob a pixel or two thin (a stray line) still gets a shape; a filled square is solid, a star is not."""
    line = np.full((64, 64, 3), BACKGROUND_COLOURS["white"], dtype=np.uint8)
    line[30:32, 10:50] = (220, 30, 30)
    assert detect(line).shape in {"circle", "square", "triangle", "cross", "star"}
    square = np.zeros((20, 20), bool)
    square[2:18, 3:17] = True
    assert solidity(square) == 1.0
    star = shape_mask("star", 40, 40)
    assert 0.5 < solidity(star) < 0.7 and solidity(shape_mask("circle", 40, 40)) > 0.9


@pytest.fixture(scope="module")
def labelled():
    from dalle_core.course.labelled import labelled_images, load_labelled_set
    from dalle_core.pipeline import MinDalle

    model = MinDalle(is_verbose=False)
    pictures = load_labelled_set()
    return model, pictures, labelled_images(model, pictures)


def test_labelled_set_is_what_its_spec_and_digests_say(labelled):
    from dalle_core.course.labelled import labelled_set_spec
    from dalle_core.lab.exercises import digest

    _model, pictures, _images = labelled
    spec = labelled_set_spec()
    assert len(pictures) == len(spec) == 240
    for picture, row in zip(pictures, spec):
        assert (picture.prompt, list(picture.asked), picture.seed, picture.supercondition_factor) == (
            row["prompt"], row["asked"], row["seed"], row["supercondition_factor"])
        assert digest(torch.tensor(picture.image_tokens)) == picture.tokens_digest
    assert {p.supercondition_factor for p in pictures} == {1.0, 4.0, 16.0}
    assert {p.asked[0] for p in pictures} == {"circle", "square", "triangle", "cross", "star"}


def test_labelled_pictures_are_the_shipped_models(labelled):
    """Three of the stored pictures (one per factor) are redrawn from prompt, seed and settings."""
    model, pictures, _images = labelled
    for picture in (pictures[5], pictures[100], pictures[200]):
        image_tokens = model.generate_image_tokens(
            picture.prompt, picture.seed, 1, picture.temperature, picture.top_k, picture.supercondition_factor)
        assert tuple(image_tokens[0].tolist()) == picture.image_tokens


def test_detector_agrees_with_the_labels(labelled):
    """The detector against 240 generated pictures labelled by eye: shape 97 % of the pictures with a
    nameable shape (the sharp templates alone: under 92 %, stars read as circles), colour and position 99 %."""
    from dalle_core.course.labelled import agreement

    _model, pictures, images = labelled
    shares = agreement([detect(image) for image in images], pictures)
    assert shares["shape"] >= 0.97 and shares["colour"] >= 0.99 and shares["position"] >= 0.99, shares
    sharp = agreement([detect(image, soft=False) for image in images], pictures)
    assert sharp["shape"] < 0.92 and (sharp["colour"], sharp["position"]) == (shares["colour"], shares["position"])
