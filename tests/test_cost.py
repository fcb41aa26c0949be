"""dalle_core.lab.cost: the counted bytes and FLOPs agree with the code that runs."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dalle_core import DalleBartDecoder, DalleConfig
from dalle_core.lab.cost import decoder_step_cost, generation_cost, recomputed_generation_flops
from dalle_core.pipeline import new_attention_state
from dalle_core.trace import recording

from .conftest import TEST_TINY, randomize


def _matrix_count(config: DalleConfig, with_cross_keys_values: bool) -> int:
    with torch.device("meta"):
        decoder = DalleBartDecoder(config)
    return sum(
        p.numel() for name, p in decoder.named_parameters()
        if p.dim() == 2 and not name.startswith("embed")
        and (with_cross_keys_values or not any(k in name for k in ("encoder_attn.k_proj", "encoder_attn.v_proj")))
    )


@pytest.mark.parametrize("name", ["mega", "mini", "tiny"])
def test_weight_bytes_are_the_decoders_matrices(name):
    config = DalleConfig.from_name(name)
    ours = decoder_step_cost(config, 1, 0, dtype=torch.float16)
    theirs = decoder_step_cost(config, 1, 0, dtype=torch.float16, cross_attention_cached=False)
    assert ours.weight_bytes == 2 * _matrix_count(config, with_cross_keys_values=False)
    assert theirs.weight_bytes == 2 * _matrix_count(config, with_cross_keys_values=True)


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("token_index", [0, 5, 15])
def test_flops_match_torchs_flop_counter(cached, token_index):
    """Run one real step (spelled-out attention, as while recording) and count its FLOPs."""
    config, n = TEST_TINY, 2
    decoder = randomize(DalleBartDecoder(config), seed=1).eval()
    encoder_state = torch.randn(2 * n, config.text_token_count, config.embed_count)
    attention_mask = torch.ones(2 * n, 1, 1, config.text_token_count, dtype=torch.bool)
    attention_state = new_attention_state(config, n)
    prev_tokens = torch.zeros(2 * n, 1, dtype=torch.long)
    with torch.no_grad():
        keys_values = decoder.encoder_keys_values(encoder_state) if cached else None
        with recording(), FlopCounterMode(display=False) as counter:
            decoder.decode(encoder_state, attention_mask, prev_tokens, torch.tensor([token_index]),
                           attention_state, keys_values)
    expected = decoder_step_cost(config, n, token_index, cross_attention_cached=cached)
    assert counter.get_total_flops() == expected.flops


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cached_bytes_are_the_tensors_a_generation_keeps(tiny_root, dtype, monkeypatch):
    """The cache and the cross-attention keys/values are counted at the dtype the pipeline stores
    them in: the cache's (float32 on the CPU even for a bfloat16 model), not the weights'."""
    from dalle_core import MinDalle

    model = MinDalle(tiny_root, dtype=dtype, model="tiny", is_verbose=False)
    model.init_decoder()
    seen = {}
    step = model.decoder.sample_tokens

    def spy(settings, **kwargs):
        seen.setdefault("keys_values", [t for pair in kwargs["encoder_keys_values"] for t in pair])
        seen.setdefault("attention_state", kwargs["attention_state"])
        return step(settings, **kwargs)

    monkeypatch.setattr(model.decoder, "sample_tokens", spy)
    model.generate_image_tokens("a red circle", seed=1, grid_size=1)
    state, keys_values = seen["attention_state"], seen["keys_values"]
    options = {"dtype": dtype, "attention_state_dtype": model.attention_state_dtype}
    first = decoder_step_cost(model.config, 1, 0, **options)
    assert first.cross_bytes == sum(t.numel() * t.element_size() for t in keys_values)
    last = decoder_step_cost(model.config, 1, model.config.image_token_count - 1, **options)
    slot = state[:, :, :1]  # written once more at the last step
    assert last.cache_bytes == (state.numel() + slot.numel()) * state.element_size()


def test_memory_bound_and_what_grows():
    mini = DalleConfig.mini()
    one = decoder_step_cost(mini, 1, 128)
    sixteen = decoder_step_cost(mini, 16, 128)
    assert one.intensity < 2  # about 1 FLOP per float32 byte: memory-bound on any CPU or GPU
    assert sixteen.intensity > 8 * one.intensity  # 16 images reuse each weight 16 times
    assert sixteen.weight_bytes == one.weight_bytes and sixteen.cache_bytes == 16 * one.cache_bytes
    half = decoder_step_cost(mini, 1, 128, dtype=torch.bfloat16)
    assert half.total_bytes * 2 == one.total_bytes and half.flops == one.flops
    theirs = decoder_step_cost(mini, 1, 128, cross_attention_cached=False, attend_all_slots=True)
    assert theirs.flops > 4 * one.flops  # min-dalle's per-step k/v projections of encoder_state


def test_generation_is_linear_with_a_cache():
    config = DalleConfig.mega()
    cached = generation_cost(config, 1).flops
    recomputed = recomputed_generation_flops(config, 1)
    assert 100 < recomputed / cached < 256  # about (256 + 1) / 2 token passes each, plus the attention


@pytest.mark.parametrize("kwargs, error", [
    ({"image_count": 0}, ValueError), ({"token_index": 256}, ValueError), ({"token_index": -1}, ValueError),
    ({"dtype": torch.long}, TypeError), ({"dtype": "float32"}, TypeError),
])
def test_bad_input(kwargs, error):
    arguments = {"config": DalleConfig.mini(), "image_count": 1, "token_index": 0} | kwargs
    with pytest.raises(error):
        decoder_step_cost(**arguments)
