"""MinDalle end to end on a small model in the course model's layout: API, fixes, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dalle_core.pipeline import MinDalle, attention_state_bytes, to_pil

from .conftest import TEST_TINY


@pytest.fixture(scope="module")
def model(tiny_root):
    return MinDalle(tiny_root, model="tiny", is_verbose=False)


def test_generate_image_positional_grid_size_and_pil(model):
    image = model.generate_image("a red circle", 3, 2)
    assert isinstance(image, Image.Image) and image.size == (16, 16)
    images = model.generate_images("a red circle", 3, 2)  # grid_size positional: min-dalle needed a keyword
    assert images.shape == (4, 8, 8, 3) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 255


def test_same_seed_same_images_and_seed_matters(model):
    a = model.generate_image_tokens("a red circle", 5, 2)
    b = model.generate_image_tokens("a red circle", 5, 2)
    c = model.generate_image_tokens("a red circle", 6, 2)
    assert a.shape == (4, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.max()) < TEST_TINY.image_code_count


def test_progressive_frames_end_with_final_image(model):
    frames = list(model.generate_raw_image_stream("a red circle", 5, 1, progressive_outputs=True))
    assert len(frames) == 8  # as min-dalle's 256 / 32; here 16 tokens, a frame every 2
    final = model.generate_raw_image_stream("a red circle", 5, 1)
    assert torch.equal(frames[-1], next(iter(final)))


def test_not_reusable_with_progressive_output(tiny_root):
    """min-dalle deletes the decoder at the first progressive frame and then crashes."""
    model = MinDalle(tiny_root, model="tiny", is_verbose=False, is_reusable=False)
    assert model.decoder is None and model.encoder is None
    model_reusable = MinDalle(tiny_root, model="tiny", is_verbose=False)
    with torch.inference_mode():
        stream = model.image_token_stream("a red circle", 5, 1, every=4)
        frames = [model.image_grid_from_tokens(tokens[:, 1:].clone(), False) for tokens in stream]
    assert len(frames) == 4
    assert model.decoder is None and model.detokenizer is None
    expected = model_reusable.generate_raw_image_stream("a red circle", 5, 1)
    assert torch.equal(frames[-1], next(iter(expected)))
    images = list(model.generate_image_stream("a red circle", 5, 1, progressive_outputs=True))
    assert len(images) == 8


def test_seamless_is_one_decoded_map(model):
    grid = next(iter(model.generate_raw_image_stream("a red circle", 5, 2, is_seamless=True)))
    assert grid.shape == (16, 16, 3)


@pytest.mark.parametrize("text", ["", "   ", "ünïcödé ✨ only", "🐈", "red " * 200])
def test_awkward_prompts_still_generate(model, text):
    assert model.generate_image_tokens(text, 1, 1).shape == (1, 16)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(grid_size=0), ValueError, "grid_size"),
        (dict(grid_size=-2), ValueError, "grid_size"),
        (dict(grid_size=1.5), TypeError, "grid_size"),
        (dict(grid_size="3"), TypeError, "grid_size"),
        (dict(temperature=0), ValueError, "temperature"),
        (dict(temperature=float("nan")), ValueError, "temperature"),
        (dict(top_k=0), ValueError, "top_k"),
        (dict(supercondition_factor=float("nan")), ValueError, "supercondition_factor"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(text=None), TypeError, "text"),
    ],
)
def test_bad_arguments(model, kwargs, error, words):
    args = dict(text="a red circle", seed=1, grid_size=1) | kwargs
    with pytest.raises(error, match=words):
        model.generate_image(**args)


def test_to_pil_accepts_float_and_uint8():
    grid = torch.rand(8, 8, 3) * 255
    assert to_pil(grid).size == (8, 8)
    assert to_pil(grid.numpy().astype(np.uint8)).mode == "RGB"
    with pytest.raises(ValueError):
        to_pil(torch.rand(8, 8))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_cpu(tiny_root, dtype):
    model = MinDalle(tiny_root, dtype=dtype, model="tiny", is_verbose=False, attention_state_dtype=dtype)
    assert model.decoder.lm_head.weight.dtype == dtype
    assert model.detokenizer.embedding.weight.dtype == torch.float32  # the VQGAN stays float32
    images = model.generate_images("a red circle", 2, 1)
    assert images.shape == (1, 8, 8, 3) and torch.isfinite(images).all()


def test_attention_state_memory():
    from dalle_core import DalleConfig

    assert attention_state_bytes(DalleConfig.mega(), 16) == 3 * 2**30  # float32, a 4x4 grid
    assert attention_state_bytes(DalleConfig.mega(), 16, torch.float16) == 3 * 2**29


def test_bad_constructor_arguments(tiny_root, tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        MinDalle(tiny_root, model="tiny", dtype=torch.int8)
    with pytest.raises(ValueError, match="device"):
        MinDalle(tiny_root, model="tiny", device="no-such-device")
    with pytest.raises(ValueError, match="model"):
        MinDalle(tiny_root, model="huge")
    with pytest.raises(FileNotFoundError, match="course model"):
        MinDalle(tmp_path, model="tiny")


def test_recording_keeps_values_when_asked(model):
    from dalle_core.trace import recording

    with recording(keep_values=True) as records:
        model.generate_image_tokens("a red circle", 5, 1)
    weights = [r for r in records if r.name == "encoder self-attention weights"]
    assert len(weights) == TEST_TINY.layer_count
    assert weights[0].value.shape == (2, TEST_TINY.attention_head_count, 64, 64)
    torch.testing.assert_close(weights[0].value.sum(-1), torch.ones(2, TEST_TINY.attention_head_count, 64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cache_dtype_on_the_cpu(tiny_root, dtype):
    """A float32 cache by default on the CPU (fast float32 attention); any dtype on request."""
    wide = MinDalle(tiny_root, dtype=dtype, model="tiny", is_verbose=False)
    narrow = MinDalle(tiny_root, dtype=dtype, model="tiny", is_verbose=False, attention_state_dtype=dtype)
    assert wide.attention_state_dtype == torch.float32 and narrow.attention_state_dtype == dtype
    for model in (wide, narrow):
        tokens = model.generate_image_tokens("a red circle", seed=3, grid_size=2)
        assert tokens.shape == (4, 16) and 0 <= int(tokens.min()) and int(tokens.max()) < 64
