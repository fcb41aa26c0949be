"""A --quick training run: every stage runs, the loss falls, the files load into MinDalle."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from dalle_core.__main__ import main
from dalle_core.config import TINY_ROOT, DalleConfig, VQGanConfig
from dalle_core.course import train
from dalle_core.course.dalle_train import EMPTY_PROMPT, drop_captions, trim_padding
from dalle_core.course.train import TrainSettings, add_cli, settings_from_args, train_course_model
from dalle_core.pipeline import MinDalle

# the tests on `trained` share one quick training run (18 s on the project's loaded 2-core machine)
SLOW = pytest.mark.slow
FILES = ("config.json", "vocab.json", "merges.txt", "encoder.pt", "decoder.pt", "detoker.pt", "metadata.json")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    settings = TrainSettings.quick(vqgan_steps=20, dalle_steps=30, example_count=128, validation_count=16)
    metadata = train_course_model(settings, out, samples_dir=None, progress=False)
    return out, metadata


@SLOW
def test_writes_every_file(trained):
    out, metadata = trained
    for name in FILES:
        assert (out / name).is_file(), name
    assert not [p.name for p in out.iterdir() if ".part" in p.name]  # every file written whole
    with open(out / "metadata.json", encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(metadata))
    assert metadata["settings"]["data_seed"] == 0 and "total_s" in metadata["wall_time_s"]


@SLOW
def test_config_json_rebuilds_the_configs(trained):
    out, _ = trained
    with open(out / "config.json", encoding="utf-8") as f:
        data = json.load(f)
    dalle, vqgan = DalleConfig.from_dict(data["dalle"]), VQGanConfig.from_dict(data["vqgan"])
    with open(out / "vocab.json", encoding="utf-8") as f:
        assert dalle.text_vocab_count == len(json.load(f))
    assert dalle.image_start_token == dalle.image_vocab_count == vqgan.vocab_count
    assert dalle.image_token_count == (64 // vqgan.downsample_factor) ** 2


@SLOW
def test_losses_fall(trained):
    _, metadata = trained
    validation = [loss for _, loss in metadata["dalle"]["validation_loss"]]
    assert validation[-1] < validation[0]
    assert metadata["vqgan"]["final_train_loss"] < 0.9  # a fresh VQGAN starts near 1.0


@SLOW
def test_files_load_strictly_into_min_dalle(trained):
    out, _ = trained
    model = MinDalle(models_root=out, model="tiny", is_verbose=False)
    first = model.generate_images("a red circle", seed=3, grid_size=2, top_k=16)
    again = model.generate_images("a red circle", seed=3, grid_size=2, top_k=16)
    assert first.shape == (4, 64, 64, 3) and torch.equal(first, again)


def test_caption_drop_and_padding_trim():
    text_tokens = torch.tensor([[0, 5, 6, 2, 1, 1], [0, 7, 2, 1, 1, 1]])
    dropped = drop_captions(text_tokens, 1.0, torch.Generator().manual_seed(0))
    assert dropped.tolist() == [[*EMPTY_PROMPT, 1, 1, 1, 1]] * 2
    assert torch.equal(drop_captions(text_tokens, 0.0, torch.Generator()), text_tokens)
    assert trim_padding(text_tokens).tolist() == [[0, 5, 6, 2], [0, 7, 2, 1]]


def test_command_line_options():
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--quick", "--dalle-steps", "7", "--seed", "3"])
    settings = settings_from_args(args)
    assert settings.is_quick and settings.dalle_steps == 7 and settings.seed == 3 and callable(args.func)
    full = settings_from_args(parser.parse_args(["train"]))
    assert not full.is_quick and full.dalle_steps == TrainSettings().dalle_steps


@pytest.mark.parametrize("args, words", [
    (["--wrong-colour-share", "1.5"], "--wrong-colour-share must be in [0, 1)"),
    (["--dalle-steps", "0"], "--dalle-steps must be at least 1"),
])
def test_bad_options_one_line_exit_2(args, words, capsys, tmp_path):
    assert main(["train", "--quick", "--out", str(tmp_path / "model"), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


@pytest.fixture
def no_training(monkeypatch):
    """`train` as the command line runs it, with the training itself replaced by a note of its folder."""
    calls = []
    monkeypatch.setattr(train, "train_course_model", lambda settings, out, *args, **kwargs: calls.append(Path(out)))
    return calls


def test_the_shipped_model_is_replaced_only_when_asked(no_training, capsys):
    shipped = {p.name: p.stat().st_mtime_ns for p in TINY_ROOT.iterdir()}
    for out in (str(TINY_ROOT), str(TINY_ROOT / "sub"), str(TINY_ROOT / ".." / "tiny")):
        assert main(["train", "--quick", "--out", out]) == 2
        err = capsys.readouterr().err
        assert "the shipped course model" in err and "--replace-shipped" in err, err
        assert len(err.strip().splitlines()) == 1
    assert no_training == []
    assert main(["train", "--quick", "--out", str(TINY_ROOT), "--replace-shipped"]) == 0
    assert no_training == [TINY_ROOT]  # the flag lets it through (the training itself is replaced here)
    assert {p.name: p.stat().st_mtime_ns for p in TINY_ROOT.iterdir()} == shipped


def test_by_default_the_model_goes_outside_the_package(no_training, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--quick"]) == 0
    assert no_training == [Path("build") / "course-model"]
    assert not no_training[0].resolve().is_relative_to(TINY_ROOT.parent.parent)


@SLOW
def test_transformer_alone_can_be_retrained_on_a_trained_vqgan(trained, tmp_path):
    out, _ = trained
    settings = TrainSettings.quick(dalle_steps=5, example_count=32, validation_count=8, vqgan_from=str(out),
                                   wrong_colour_share=0.2)
    metadata = train_course_model(settings, tmp_path, samples_dir=None, progress=False)
    assert metadata["vqgan"]["reused_from"] == str(out)
    assert (tmp_path / "detoker.pt").read_bytes() == (out / "detoker.pt").read_bytes()
    MinDalle(models_root=tmp_path, model="tiny", is_verbose=False).generate_images("a red circle", seed=1, top_k=8)


@SLOW
def test_same_settings_write_the_same_files(trained, tmp_path):
    """Training is deterministic: the same settings again give the same bytes in every file
    but metadata.json (which records wall times)."""
    out, metadata = trained
    settings = TrainSettings(**metadata["settings"])
    train_course_model(settings, tmp_path, samples_dir=None, progress=False)
    for name in FILES + ("vqgan_encoder.pt",):
        if name != "metadata.json":
            assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_default_settings_are_the_shipped_models():
    """`python -m dalle_core train` with no options must rebuild the shipped files."""
    from dataclasses import asdict

    shipped = json.loads((TINY_ROOT / "metadata.json").read_text())["settings"]
    defaults = asdict(TrainSettings())
    differing = {k: (shipped.get(k), v) for k, v in defaults.items() if k != "threads" and shipped.get(k) != v}
    assert not differing, f"TrainSettings defaults differ from the shipped model's settings: {differing}"


def test_quick_model_draws_16x16_tokens(tmp_path):
    """The course model's image-side shapes are Mega's: 256 image tokens, image_tokens (n, 257),
    attention_state (L, 4n, 256, E), a VQGAN of downsampling factor 4 on 64x64 pictures."""
    from dalle_core.pipeline import new_attention_state

    settings = TrainSettings.quick(vqgan_steps=10, dalle_steps=10, example_count=32, validation_count=8)
    train_course_model(settings, tmp_path, samples_dir=None, progress=False)
    model = MinDalle(models_root=tmp_path, model="tiny", is_verbose=False)
    assert model.config.image_token_count == 256 and model.detokenizer.config.downsample_factor == 4
    frames = list(model.image_token_stream("a red circle", seed=1, grid_size=2, top_k=8, every=256))
    assert frames[-1].shape == (4, 257)
    assert new_attention_state(model.config, 4).shape == (1, 16, 256, 32)
    assert model.generate_images("a red circle", seed=1, grid_size=2, top_k=8).shape == (4, 64, 64, 3)


def test_edge_weight_marks_outlines():
    from dalle_core.course.data import images_to_tensor, make_dataset
    from dalle_core.course.vqgan_train import object_weights

    images, records = make_dataset(2, seed=0)
    pixels = images_to_tensor(images)  # (2, 3, 64, 64)
    plain = object_weights(pixels, records, 10.0)
    edged = object_weights(pixels, records, 10.0, edge_weight=3.0)
    assert set(plain.unique().tolist()) == {1.0, 10.0}
    assert set(edged.unique().tolist()) <= {1.0, 3.0, 10.0, 30.0} and (edged == 30.0).any() and (edged == 3.0).any()
    assert torch.equal(edged == plain, (edged == 1.0) | (edged == 10.0))
