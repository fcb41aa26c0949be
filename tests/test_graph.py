"""The fixed-shape decoder step (dalle_core.graph): the eager loop's tokens, on the CPU and on CUDA."""
from __future__ import annotations

import statistics
import time

import pytest
import torch

from dalle_core import DalleBartDecoder, DalleBartEncoder, VQGanDetokenizer, graph
from dalle_core.pipeline import MinDalle, new_attention_state
from dalle_core.sampling import draw_once, top_k_mask
from dalle_core.trace import recording

from .conftest import SMALL, SMALL_VQGAN, randomize

SETTINGS = [
    dict(),  # min-dalle's defaults: temperature 1, top_k 256, supercondition 16
    dict(temperature=0.5, top_k=16, supercondition_factor=4.0),
    dict(temperature=2.0, top_k=1, supercondition_factor=1.0),
    dict(temperature=1.0, top_k=100_000, supercondition_factor=16.0),  # k above the vocabulary: keep all
]


def small_model(tokenizer, device: str = "cpu", dtype: torch.dtype = torch.float32) -> MinDalle:
    modules = [randomize(DalleBartEncoder(SMALL), 1), randomize(DalleBartDecoder(SMALL), 2),
               randomize(VQGanDetokenizer(SMALL_VQGAN), 3)]
    encoder, decoder, detokenizer = (m.to(device, dtype if i < 2 else torch.float32) for i, m in enumerate(modules))
    return MinDalle.from_modules(tokenizer, encoder, decoder, detokenizer)


@pytest.fixture(scope="module")
def model(tokenizer):
    return small_model(tokenizer)


def generate(model: MinDalle, path: str | None, grid_size: int, seed: int = 7, **settings) -> torch.Tensor:
    model.decode_path = path
    try:
        return model.generate_image_tokens("a red circle", seed, grid_size, **settings)
    finally:
        model.decode_path = None


@pytest.mark.parametrize("shape", [(1, 16384), (9, 16384), (4, 7)])
def test_draw_once_is_torch_multinomial(shape):
    generator = torch.Generator().manual_seed(shape[0])
    probs = torch.rand(shape, generator=generator) ** 8
    probs[:, ::3] = 0  # dropped entries (outside the top k) are exact zeros
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        expected = torch.multinomial(probs, 1)[:, 0]
        torch.manual_seed(seed)
        assert torch.equal(draw_once(probs), expected)


@pytest.mark.parametrize("top_k", [1, 2, 16, 256, 16384, 20000])
def test_top_k_from_a_tensor_keeps_the_same_logits(top_k):
    logits = torch.randn(5, 16384, generator=torch.Generator().manual_seed(top_k))
    logits[:, 100:140] = logits[:, [100]]  # a run of ties in every row
    is_kept, row_max = top_k_mask(logits, top_k)
    is_kept_tensor, row_max_tensor = top_k_mask(logits, torch.tensor(top_k))
    assert torch.equal(is_kept, is_kept_tensor) and torch.equal(row_max, row_max_tensor)
    assert bool((is_kept.sum(-1) >= min(top_k, 16384)).all())


@pytest.mark.parametrize("grid_size, settings", [(1, s) for s in SETTINGS] + [(2, s) for s in SETTINGS[:2]])
def test_static_step_draws_the_eager_tokens(model, grid_size, settings):
    eager = generate(model, "eager", grid_size, **settings)
    static = generate(model, "static", grid_size, **settings)
    assert eager.shape == (grid_size**2, 256)
    assert torch.equal(static, eager)
    assert len(set(eager[0].tolist())) > 1, "sampling should not collapse to one token"


def test_static_step_logits_equal_the_eager_step(model, prepared):
    """Every position: the full-length masked read gives the sliced read's logits and cache."""
    decoder, image_count = model.decoder, 2
    encoder_state, attention_mask = prepared(model.encoder, "a red circle", image_count)
    image_tokens = torch.randint(0, 16384, (image_count, 257), generator=torch.Generator().manual_seed(3))
    states = [new_attention_state(SMALL, image_count) for _ in range(2)]
    with torch.inference_mode():
        keys_values = decoder.encoder_keys_values(encoder_state)
        for i in range(256):
            prev_tokens, token_index = image_tokens[:, [i]].repeat(2, 1), torch.tensor([i])
            sliced = decoder.decode(encoder_state, attention_mask, prev_tokens, token_index, states[0], keys_values)
            with decoder.fixed_length():
                fixed = decoder.decode(encoder_state, attention_mask, prev_tokens, token_index, states[1], keys_values)
            torch.testing.assert_close(fixed, sliced, atol=1e-5, rtol=1e-5, msg=f"position {i}")
    assert torch.equal(states[0][0], states[1][0])  # the first layer's keys and values: the same inputs
    torch.testing.assert_close(states[1], states[0], atol=1e-5, rtol=1e-5)


def test_decode_path_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert graph.choose_decode_path(None, cpu) == "eager"
    assert graph.choose_decode_path(None, cuda) == "graph"
    with recording():  # the notebooks record the eager step's tensors, on any device
        assert graph.choose_decode_path(None, cuda) == "eager"
    assert graph.choose_decode_path("static", cpu) == "static"
    assert graph.choose_decode_path("eager", cuda) == "eager"
    with pytest.raises(ValueError, match="CUDA device"):
        graph.choose_decode_path("graph", cpu)
    with pytest.raises(ValueError, match="decode_path"):
        graph.choose_decode_path("fast", cuda)


def test_the_pipeline_captures_only_where_the_choice_says(model, monkeypatch):
    """On the CPU no graph is built; where one is (faked here: two steps run, then reset, as a
    capture does), the generation seeds after it and draws the eager tokens."""
    captures = []

    def no_capture(step):
        raise AssertionError("a CUDA graph was built on the CPU")

    monkeypatch.setattr("dalle_core.pipeline.CapturedStep", no_capture)
    eager = generate(model, None, 1)

    class FakeCapture:
        def __init__(self, step):
            captures.append(step)
            step(), step()  # warm-up and capture both run the step and draw
            step.reset()
            self.step = step

        def __call__(self):
            self.step()

    monkeypatch.setattr("dalle_core.pipeline.CapturedStep", FakeCapture)
    monkeypatch.setattr("dalle_core.pipeline.choose_decode_path", lambda requested, device: "graph")
    assert torch.equal(generate(model, None, 1), eager)
    assert len(captures) == 1


def test_recording_still_sees_every_step(model):
    with recording() as records:
        generate(model, None, 1)
    assert sum(r.name == "prev_tokens" for r in records) == 256


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs and the pinned CUDA attention need a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_on_cuda_same_seed_same_tokens_graph_equals_static_no_stall(tokenizer, dtype):
    model = small_model(tokenizer, "cuda", dtype)
    generate(model, None, 1)  # the process's own start-up (CUDA context, cuBLAS) is not a grid size's
    times, runs = [], []
    for _ in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        runs.append(generate(model, None, 3))
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    static = generate(model, "static", 3)
    assert all(torch.equal(run, runs[0]) for run in runs), "same seed, different tokens"
    assert torch.equal(static, runs[0]), "the graph's replay drew other tokens than the same step run eagerly"
    assert times[0] <= 1.5 * statistics.median(times[1:]), f"first call {times[0]:.3f} s, later {times[1:]}"
