"""The shipped course model: present, small, offline, deterministic, and it draws what it is asked."""
from __future__ import annotations

import json

import pytest
import torch

from dalle_core.config import TINY_ROOT, DalleConfig, VQGanConfig
from dalle_core.course.batch_generation import generate_prompt_tokens
from dalle_core.course.detect import detect
from dalle_core.course.evaluate import evaluate_model, evaluation_prompts, load_vqgan_encoder, markdown_table
from dalle_core.pipeline import MinDalle

SHIPPED = ("config.json", "vocab.json", "merges.txt", "encoder.pt", "decoder.pt", "detoker.pt", "metadata.json")


@pytest.fixture(scope="module")
def model():
    return MinDalle(is_verbose=False)  # no weights given: the course model


def test_files_are_there_and_small():
    sizes = {name: (TINY_ROOT / name).stat().st_size for name in SHIPPED}
    assert sum(p.stat().st_size for p in TINY_ROOT.iterdir() if p.is_file()) <= 15 * 2**20, sizes
    with open(TINY_ROOT / "config.json", encoding="utf-8") as f:
        data = json.load(f)
    # one truth for the course sizes: the presets are what `train` builds and what ships
    assert DalleConfig.from_dict(data["dalle"]) == DalleConfig.tiny()
    assert VQGanConfig.from_dict(data["vqgan"]) == VQGanConfig.tiny()
    with open(TINY_ROOT / "metadata.json", encoding="utf-8") as f:
        metadata = json.load(f)
    # the shipped run took 90 minutes on the project's 2-core CPU, over issue 12's 75-minute
    # budget (docs/course-model.md says why); this guards against a run that silently grew
    assert metadata["settings"]["data_seed"] == 0 and metadata["wall_time_s"]["total_s"] < 100 * 60


def test_loads_offline_and_is_deterministic(model, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the course model must not touch the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    offline = MinDalle(is_verbose=False)
    first = offline.generate_images("a red circle in the top left corner", seed=7, grid_size=2)
    again = model.generate_images("a red circle in the top left corner", seed=7, grid_size=2)
    assert first.shape == (4, 64, 64, 3) and torch.equal(first, again)
    other = model.generate_images("a red circle in the top left corner", seed=8, grid_size=2)
    assert not torch.equal(first, other)


def test_batched_prompts_draw_what_min_dalle_draws(model):
    text = "a blue square in the centre"
    settings = dict(temperature=1.0, top_k=64, supercondition_factor=16.0)
    alone = model.generate_image_tokens(text, seed=5, grid_size=1, **settings)
    batched = generate_prompt_tokens(model, [text], seed=5, **settings)
    assert torch.equal(alone, batched)


def test_draws_the_asked_colour_at_supercondition_16(model):
    images = model.generate_images("a yellow triangle in the bottom right corner", seed=3, grid_size=2,
                                   top_k=64, supercondition_factor=16.0)
    colours = [detect(image).colour for image in images]
    assert colours.count("yellow") >= 3, colours


def test_vqgan_encoder_ships_with_the_model():
    assert load_vqgan_encoder(TINY_ROOT) is not None


@torch.inference_mode()
def test_vqgan_reconstructions_keep_every_attribute(model):
    """Issue 12's VQGAN target on held-out pictures, through the shipped float16 files: the
    detector reads the right shape on at least 95 % of the reconstructions, and colour,
    position and background on all of them."""
    from dalle_core.course.vqgan_train import evaluate_reconstruction

    encoder = load_vqgan_encoder(TINY_ROOT)  # strict: every key fits
    found = evaluate_reconstruction(model.detokenizer, encoder, count=192)
    assert found["images"] == 192 and found["codebook_used"] > 0.5
    assert found["detected_shape"] >= 0.95, found
    assert found["detected_colour"] == found["detected_position"] == found["detected_background"] == 1.0, found


def test_evaluation_runs_on_a_few_prompts():
    assert len(evaluation_prompts()) == 360 and len(evaluation_prompts(12)) == 12
    results = evaluate_model(prompt_count=6, factors=(16.0,), temperatures=(1.0,), reconstruction_count=8,
                             progress=False)
    assert 0.0 <= results["generation"][0]["colour"] <= 1.0 and results["reconstruction"]["images"] == 8
    assert "| 16 | 1 |" in markdown_table(results)


def test_batch_generation_checks_its_settings_before_any_work(model, monkeypatch):
    monkeypatch.setattr(model, "init_encoder", lambda: pytest.fail("encoded before the settings were checked"))
    monkeypatch.setattr(model, "encoder", None)
    with pytest.raises(ValueError, match="temperature"):
        generate_prompt_tokens(model, ["a red circle"], temperature=0)
    with pytest.raises(TypeError, match="top_k"):
        generate_prompt_tokens(model, ["a red circle"], top_k=2.5)


def test_live_training_pieces(model):
    """What notebook 07 trains live with: pairs made by the shipped files, a fine-tuning that leaves
    the shipped modules untouched, and the live accuracy measurement."""
    from dalle_core.course.dalle_train import train_dalle
    from dalle_core.course.evaluate import live_accuracy, live_attributes
    from dalle_core.course.train import live_dalle_config, shipped_examples
    from dalle_core.course.vqgan_train import round_trip

    encoder = load_vqgan_encoder(TINY_ROOT)
    text_tokens, image_tokens = shipped_examples(model, encoder, 0, 4)
    assert text_tokens.shape == (4, 64) and image_tokens.shape == (4, 256)
    from dalle_core.course.data import make_dataset

    assert torch.equal(image_tokens, round_trip(model.detokenizer, encoder, make_dataset(4, seed=0)[0])[0])
    assert live_dalle_config(model.config).image_token_count == 256
    before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    _, tuned, history = train_dalle(model.config, text_tokens, image_tokens, steps=2, batch_size=2,
                                    start_from=(model.encoder, model.decoder), progress=False)
    assert all(torch.equal(v, model.decoder.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert not torch.equal(tuned.lm_head.weight, model.decoder.lm_head.weight) and len(history.loss) == 2
    with pytest.raises(ValueError, match="sizes"):
        train_dalle(live_dalle_config(model.config), text_tokens, image_tokens, steps=1,
                    start_from=(model.encoder, model.decoder), progress=False)
    attributes = live_attributes()
    assert len(attributes) == 27 and {a[0] for a in attributes} == {"circle", "square", "triangle", "cross", "star"}
    shares, pictures = live_accuracy(model, attributes[:2], temperature=1.0, supercondition_factor=16)
    assert pictures.shape == (2, 64, 64, 3) and all(0.0 <= v <= 1.0 for v in shares.values())
