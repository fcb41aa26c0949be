"""Shape tracing on the meta device: DALL·E Mega's tensors with no memory."""
from __future__ import annotations

from pathlib import Path

import pytest

from dalle_core import DalleConfig
from dalle_core.lab.shapes import trace_shapes

MEGA_4X4 = {
    "text_tokens": (2, 64),
    "encoder_state": (2, 64, 2048),
    "expanded_indices": (32,),
    "text_tokens expanded": (32, 64),
    "encoder_state expanded": (32, 64, 2048),
    "attention_mask": (32, 1, 1, 64),
    "attention_state": (24, 64, 256, 2048),
    "image_tokens": (16, 257),
    "token_indices": (256,),
    "prev_tokens": (16, 1),
    "token_index": (1,),
    "prev_tokens repeated": (32, 1),
    "decoder_state": (32, 1, 2048),
    "logits": (32, 1, 16416),
    "logits sliced": (32, 16384),
    "logits superconditioned": (16, 16384),
    "image_tokens[:, i + 1]": (16,),
    "vqgan code vectors": (16, 16, 16, 256),
    "vqgan conv_out": (16, 3, 256, 256),
    "image grid": (1024, 1024, 3),
}


@pytest.fixture(scope="module")
def mega():
    return trace_shapes("mega", 4)


@pytest.mark.parametrize("name", MEGA_4X4)
def test_mega_shapes(mega, name):
    assert mega.shape(name) == MEGA_4X4[name]


def test_mini_and_grid_size_scale():
    traced = trace_shapes(DalleConfig.mini(), 3)
    assert traced.shape("attention_state") == (12, 36, 256, 1024)
    assert traced.shape("logits") == (18, 1, 16385)
    assert traced.shape("image grid") == (768, 768, 3)


def test_unknown_name_is_a_clear_error(mega):
    with pytest.raises(KeyError, match="no tensor named"):
        mega.shape("nope")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-memory reset")
def test_cli_prints_table_in_little_memory(capsys):
    """In this process: the peak (VmHWM) restarts from the current size, and must barely move."""
    from dalle_core.__main__ import main
    from dalle_core.memory import peak_rss_mib, reset_peak_rss

    main(["shapes", "--model", "mega", "--grid-size", "1"])  # imports and first-use allocations done
    capsys.readouterr()
    assert reset_peak_rss()
    before = peak_rss_mib()
    assert main(["shapes", "--model", "mega", "--grid-size", "4"]) == 0
    grown = peak_rss_mib() - before
    out = capsys.readouterr().out
    assert "(24, 64, 256, 2048)" in out and "(32, 1, 16416)" in out
    # the mega cache alone is 3 GiB and the weights 10 GiB in float32: none of it is allocated
    assert grown < 256, f"the trace grew the peak by {grown:.0f} MiB"


def test_min_dalle_step_shapes_are_the_walkthroughs_rows():
    """min-dalle's own step on the meta device: the seed rows dalle_core never makes."""
    import torch

    from dalle_core.lab.shapes import min_dalle_step_shapes

    grad = torch.is_grad_enabled()
    shapes = min_dalle_step_shapes("mega", 4)
    assert torch.is_grad_enabled() == grad  # min_dalle's import turns autograd off; restored
    assert shapes == {
        "token_index repeated": (32, 1),
        "prev_tokens repeated": (32, 1),
        "decoder self-attention weights": (32, 32, 1, 256),
        "logits_sorted": (16, 16384),
    }
    assert min_dalle_step_shapes("mini", 3)["token_index repeated"] == (18, 1)
    # the course model draws 256 tokens too, so min-dalle's decoder takes its sizes
    assert min_dalle_step_shapes("tiny", 3)["decoder self-attention weights"] == (18, 4, 1, 256)
    with pytest.raises(ValueError, match="256 image positions"):
        min_dalle_step_shapes(DalleConfig.tiny().replace(image_token_count=64, name="8x8"), 3)
