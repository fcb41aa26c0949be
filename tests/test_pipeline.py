"""MinDalle end to end on a small model in the course model's layout: API, fixes, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dalle_core.memory import attention_state_bytes
from dalle_core.pipeline import MinDalle, to_pil

from .conftest import TEST_TINY


@pytest.fixture(scope="module")
def model(tiny_root):
    return MinDalle(tiny_root, model="tiny", is_verbose=False)


def test_generate_image_positional_grid_size_and_pil(model):
    image = model.generate_image("a red circle", 3, 2)
    assert isinstance(image, Image.Image) and image.size == (16, 16)
    images = model.generate_images("a red circle", 3, 2)  # grid_size positional: min-dalle needed a keyword
    assert images.shape == (4, 8, 8, 3) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 255


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


def test_tokens_from_outside_are_checked_at_the_public_edge(model):
    """The VQGAN module reads no token values (it also runs on the meta device); MinDalle does."""
    for bad, shown in ((70, "70..70"), (-1, "-1..-1")):
        with pytest.raises(ValueError, match=rf"image tokens must lie in 0\.\.63, got {shown}"):
            model.image_grid_from_tokens(torch.full((1, 16), bad), is_seamless=False)
    with torch.device("meta"):
        tokens = torch.zeros(4, 16, dtype=torch.long)
    assert model.detokenizer.token_map(tokens, is_seamless=True).shape == (1, 8, 8)


def test_tile_images_rows_and_padding():
    from dalle_core.vqgan import images_to_grid, tile_images

    images = torch.arange(5.0)[:, None, None, None].expand(5, 2, 3, 1)  # image i filled with i
    grid = tile_images(images, columns=3, fill=-1.0)
    assert grid.shape == (4, 9, 1)
    assert grid[::2, ::3, 0].tolist() == [[0, 1, 2], [3, 4, -1]]  # row-major, the short row filled
    square = torch.arange(4.0)[:, None, None, None].expand(4, 2, 2, 1)
    assert images_to_grid(square)[::2, ::2, 0].tolist() == [[0, 2], [1, 3]]  # min-dalle's order: i = a*g + b


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
        assert tokens.shape == (4, 16) and int(tokens.min()) >= 0 and int(tokens.max()) < 64


# ---- careless input: a clear answer before any work -------------------------------------
@pytest.fixture
def no_work(model, monkeypatch):
    """The model as it is, but loading or running the encoder fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr(model, "encoder", None)
    monkeypatch.setattr(model, "init_encoder", refuse)
    return model


@pytest.mark.parametrize("text, words", [("红色的圆形在左上角", "红色的圆形在左上角"), ("¿¿ ¡¡", "¿¿ ¡¡")])
def test_unreadable_prompt_is_refused(no_work, text, words):
    with pytest.raises(ValueError, match="DALL·E Mini reads English") as error:
        no_work.generate_image(text, 1, 1)
    assert repr(words) in str(error.value)


def test_unreadable_words(tokenizer):
    assert tokenizer.unreadable_words("a 红色 red ¿¡ circle") == ["红色", "¿¡"]
    assert tokenizer.unreadable_words("🐈 café") == []  # emoji become names; é is dropped, "caf" stays
    assert tokenizer.unreadable_words("") == []


def test_grid_too_large_for_memory_is_refused(no_work):
    from dalle_core.memory import available_memory

    limit, source = available_memory(torch.device("cpu"))
    assert limit > 0 and source
    too_big = r"1000x1000 grid needs about [\d.]+ GiB .* more than the [\d.]+ [GM]iB available"
    with pytest.raises(ValueError, match=too_big) as error:
        no_work.generate_image("a red circle", grid_size=1000)
    assert "attention_state" in str(error.value) and "grid_size" in str(error.value)


def test_memory_limit_and_estimate(model, monkeypatch):
    from dalle_core import DalleConfig, VQGanConfig, memory

    config, vqgan = model.config, model.vqgan_config
    one = sum(memory.generation_bytes(config, vqgan, 1).values())
    nine = sum(memory.generation_bytes(config, vqgan, 9).values())
    assert nine == 9 * one  # every part grows with the image count
    monkeypatch.setattr(memory, "available_memory", lambda device: (5 * one, "a test limit"))
    with pytest.raises(ValueError, match=r"a test limit.*use grid_size 2 or less"):
        model.generate_image("a red circle", 3, 3)
    assert model.generate_image_tokens("a red circle", 3, 2).shape == (4, 16)  # 4 images fit in 5
    # DALL·E Mega, a 4x4 grid in float32: the 3 GiB cache, 784 MiB of encoder state and keys/values,
    # and the VQGAN's 128 x 256 x 256 activations, three alive at once, 16 images
    mega = memory.generation_bytes(DalleConfig.mega(), VQGanConfig.dalle(), 16)
    assert mega["attention_state"] == 3 * 2**30
    assert mega["encoder state and keys/values"] == 32 * 64 * 2048 * 4 * (1 + 2 * 24)
    assert mega["VQGAN activations"] == 16 * (3 * 128 * 256**2 + 2 * 256**2) * 4


def test_shapes_on_the_meta_device_need_no_memory(monkeypatch):
    from dalle_core import memory
    from dalle_core.lab.shapes import trace_shapes

    monkeypatch.setattr(memory, "available_memory", lambda device: (1, "a test limit"))
    assert trace_shapes("mega", 8).shape("attention_state")[1] == 4 * 64  # traced, not refused
