"""The attribute detector reads the data set's ground truth back from pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dalle_core.course.data import BACKGROUND_COLOURS, make_dataset
from dalle_core.course.detect import detect, detector_accuracy, largest_component, nearest_position


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
