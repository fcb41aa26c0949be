"""Converting dalle-mini's Flax checkpoints: numbers against Flax's own, keys against min-dalle's.

The fixtures under tests/fixtures/flax/ were written by scripts/make_flax_fixtures.py with
jax/flax (a tiny DalleBart and VQGAN saved with flax.serialization.to_bytes, and their
outputs on fixed inputs); these tests need only msgpack, numpy and torch.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgpack
import numpy as np
import pytest
import torch

from dalle_core import TextTokenizer
from dalle_core.__main__ import main
from dalle_core.hub import convert
from dalle_core.hub.convert import ConversionError
from dalle_core.pipeline import MinDalle
from dalle_core.weights import model_files, read_state_dict

from . import oracle
from .conftest import FLAX_FIXTURES
from .conftest import converted_modules as ours

FIXTURES = FLAX_FIXTURES
EXPECTED = np.load(FIXTURES / "expected.npz")
LAYOUTS = json.loads((FIXTURES / "layouts.json").read_text())

# Flax and torch add and normalize in different orders; float32 noise on values of order 1-10.
ATOL, RTOL = 1e-4, 1e-4
# GroupNorm: Flax's epsilon is 1e-6, PyTorch's (min-dalle's and dalle_core's) 1e-5; the
# difference moves these pixels (values up to 7) by up to 3.4e-4 (measured).
VQGAN_ATOL, VQGAN_RTOL = 1e-3, 1e-3


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("converted")
    files = convert.convert_model(FIXTURES / "dalle", "mini", root, vqgan=FIXTURES / "vqgan",
                                  check_sizes=False, progress=False)
    assert all(p.is_file() for p in files)
    return root


def configs():
    bart, _ = convert.check_flax_config("bart", FIXTURES / "dalle", None)
    return bart, convert.check_flax_config("vqgan", FIXTURES / "vqgan", None)


def test_files_in_min_dalle_layout_with_every_key_and_no_part_left(converted):
    files = model_files(converted, "mini")
    assert not list(converted.rglob("*.part*"))
    assert files.vocab.read_bytes() == (FIXTURES / "dalle" / "vocab.json").read_bytes()
    encoder = read_state_dict(files.encoder)
    assert encoder["layers.1.glu.ln0.weight"].eq(1).all()  # no scale in Flax: ones
    assert encoder["embed_tokens.weight"].dtype == torch.float16  # kept as stored
    record = json.loads((files.encoder.parent / "converted.json").read_text())
    assert record["files"]["encoder.pt"]["size"] == files.encoder.stat().st_size


def test_encoder_state_equals_flax(converted):
    encoder, _, _ = ours(converted)
    text_tokens = torch.from_numpy(EXPECTED["text_tokens"]).long()
    with torch.no_grad():
        got = encoder(text_tokens).numpy()
    np.testing.assert_allclose(got, EXPECTED["encoder_state"], atol=ATOL, rtol=RTOL)
    assert np.abs(EXPECTED["encoder_state"]).max() > 0.5  # not a trivially small output


def test_decoder_logits_equal_flax_teacher_forced(converted):
    encoder, decoder, _ = ours(converted)
    text_tokens = torch.from_numpy(EXPECTED["text_tokens"]).long()
    image_tokens = torch.from_numpy(EXPECTED["image_tokens"]).long()
    with torch.no_grad():
        encoder_state = encoder(text_tokens)
        logits = decoder.decode(encoder_state, text_tokens.ne(1)[:, None, None, :], image_tokens,
                                torch.arange(image_tokens.shape[1]))
    np.testing.assert_allclose(logits.numpy(), EXPECTED["logits"], atol=ATOL, rtol=RTOL)


def test_min_dalle_loads_the_files_strictly_and_matches_flax_step_by_step(converted):
    bart, _ = configs()
    files = model_files(converted, "mini")
    encoder, decoder = oracle.encoder(bart), oracle.decoder(bart)
    encoder.load_state_dict(read_state_dict(files.encoder), strict=True)
    decoder.load_state_dict(read_state_dict(files.decoder), strict=True)
    encoder, decoder = encoder.float(), decoder.float()
    text_tokens = torch.from_numpy(EXPECTED["text_tokens"]).long()
    image_tokens = torch.from_numpy(EXPECTED["image_tokens"][:1]).long()  # min-dalle repeats it for both rows
    with torch.no_grad():
        encoder_state = encoder(text_tokens)
        np.testing.assert_allclose(encoder_state.numpy(), EXPECTED["encoder_state"], atol=ATOL, rtol=RTOL)
        state = torch.zeros(bart.layer_count, 4, 256, bart.embed_count)
        mask = text_tokens.ne(1)[:, None, None, :]
        for i in range(image_tokens.shape[1]):
            logits, state = decoder(mask, encoder_state, state, image_tokens[:, [i]], torch.tensor([i]))
            np.testing.assert_allclose(logits[:, 0].numpy(), EXPECTED["logits"][:, i], atol=ATOL, rtol=RTOL,
                                       err_msg=f"step {i}")


def test_vqgan_pixels_equal_flax(converted):
    _, _, detokenizer = ours(converted)
    tokens = torch.from_numpy(EXPECTED["vqgan_tokens"]).long()
    with torch.no_grad():
        z = detokenizer.embedding(tokens.reshape(2, 4, 4)).permute(0, 3, 1, 2)  # (2, embed, 4, 4)
        raw = detokenizer.decode_latents(z).permute(0, 2, 3, 1)  # (2, 8, 8, 3), unclipped like Flax's
        pixels = detokenizer.decode_images(tokens)
    expected = EXPECTED["vqgan_pixels"]
    np.testing.assert_allclose(raw.numpy(), expected, atol=VQGAN_ATOL, rtol=VQGAN_RTOL)
    np.testing.assert_allclose(pixels.numpy(), np.clip(expected, 0, 1) * 255, atol=VQGAN_ATOL * 255, rtol=0)
    assert expected.std() > 0.1


def test_generation_runs_on_the_converted_modules(converted):
    encoder, decoder, detokenizer = ours(converted)
    files = model_files(converted, "mini")
    tokenizer = TextTokenizer.from_files(files.vocab, files.merges)
    model = MinDalle.from_modules(tokenizer, encoder, decoder, detokenizer)
    image = model.generate_image("a red circle", seed=1, grid_size=1, progress=False)
    assert image.size == (32, 32)  # 16x16 tokens, the fixture VQGAN's factor of 2


@pytest.mark.parametrize("model", ["mini", "mega"])
def test_full_size_layout_gives_min_dalle_keys_and_shapes(model):
    """The names and shapes of the published Mini / Mega (from Flax, shapes only) convert to
    exactly the keys and shapes of min-dalle's modules and dalle_core's."""
    config, force_ln_scale = convert.dalle_config_from_flax(LAYOUTS["configs"][model])
    shapes = {k: tuple(v) for k, v in LAYOUTS[model].items()}
    plan = convert.dalle_bart_plan(shapes, config, force_ln_scale)
    encoder_steps, decoder_steps, encoder_defaults, decoder_defaults = plan
    with torch.device("meta"):
        references = (oracle.encoder(config, device="meta"), oracle.decoder(config, device="meta"))
    for steps, defaults, reference in zip(
        (encoder_steps, decoder_steps), (encoder_defaults, decoder_defaults), references
    ):
        made = {s.torch: convert.output_shape(s, shapes[s.flax]) for s in steps}
        expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
        assert not set(made) & set(defaults)
        assert set(made) | set(defaults) == set(expected)
        assert made == {k: v for k, v in expected.items() if k in made}
        assert all(k.endswith("weight") and ("ln" in k or "layer_norm" in k) for k in defaults)
    assert len(encoder_defaults) == 1 + 3 * config.layer_count  # final_ln + 3 norms per layer
    assert len(decoder_defaults) == 1 + 4 * config.layer_count
    assert config == convert.DalleConfig.from_name(model).replace(name="converted")


def test_full_size_vqgan_layout_gives_min_dalle_keys_and_shapes():
    config = convert.vqgan_config_from_flax(LAYOUTS["configs"]["vqgan"])
    assert config == convert.VQGanConfig.dalle().__class__(
        **{**convert.VQGanConfig.dalle().to_dict(), "name": "converted"}
    )
    shapes = {k: tuple(v) for k, v in LAYOUTS["vqgan"].items()}
    steps = convert.vqgan_plan(shapes, config)
    with torch.device("meta"):
        reference = oracle.VQGanDetokenizer()
    assert {s.torch: convert.output_shape(s, shapes[s.flax]) for s in steps} == {
        k: tuple(v.shape) for k, v in reference.state_dict().items()
    }
    assert any(k.startswith("encoder/") for k in shapes)  # present in the file, skipped


def test_missing_and_unexpected_parameters_are_named():
    config, _ = convert.dalle_config_from_flax(LAYOUTS["configs"]["mini"])
    shapes = {k: tuple(v) for k, v in LAYOUTS["mini"].items()}
    gone = "model/decoder/layers/FlaxBartDecoderLayers/GLU_0/Dense_1/kernel"
    del shapes[gone]
    shapes["model/decoder/extra/kernel"] = (1, 1)
    with pytest.raises(ConversionError) as error:
        convert.dalle_bart_plan(shapes, config, False)
    assert gone in str(error.value) and "model/decoder/extra/kernel" in str(error.value)


def write_flax(path: Path, tree: dict) -> None:
    """Flax's format, written with msgpack alone (flax/serialization.py): ndarray = ExtType 1."""

    def ext(value):
        if isinstance(value, np.ndarray):
            return msgpack.ExtType(
                1, msgpack.packb((value.shape, value.dtype.name, value.tobytes()), use_bin_type=True)
            )
        return value

    path.write_bytes(msgpack.packb(tree, default=ext, strict_types=True))


def test_reader_handles_dtypes_bfloat16_and_chunked_arrays(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    bf16 = torch.tensor([1.5, -2.0]).to(torch.bfloat16)
    tree = {
        "x": {"a": a, "h": a.astype(np.float16)},
        "chunked": {
            convert.CHUNKED: True,
            "shape": {"0": 2, "1": 3},
            "chunks": {"0": np.arange(4, dtype=np.float32), "1": np.arange(4, 6, dtype=np.float32)},
        },
    }
    write_flax(tmp_path / "m.msgpack", tree)
    # bfloat16: numpy has no such dtype; write its bytes under Flax's name by hand
    raw = msgpack.packb(
        {"b": msgpack.ExtType(1, msgpack.packb(([2], "bfloat16", bf16.view(torch.int16).numpy().tobytes())))}
    )
    (tmp_path / "b.msgpack").write_bytes(raw)
    params = convert.read_flax_params(tmp_path / "m.msgpack")
    assert params["x/a"].tolist() == a.tolist() and params["x/h"].dtype == torch.float16
    assert params["chunked"].tolist() == a.tolist()
    assert torch.equal(convert.read_flax_params(tmp_path / "b.msgpack")["b"], bf16)


def test_truncated_file_is_a_clear_error(tmp_path):
    data = (FIXTURES / "dalle" / "flax_model.msgpack").read_bytes()
    (tmp_path / "cut.msgpack").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConversionError, match="truncated"):
        convert.read_flax_params(tmp_path / "cut.msgpack")


def test_unsupported_variant_is_refused_before_reading():
    with pytest.raises(ConversionError, match="ln_positions"):
        convert.dalle_config_from_flax({**LAYOUTS["configs"]["mini"], "ln_positions": "swinv2"})


def test_a_vqgan_of_another_size_is_refused_from_its_config():
    assert convert.check_flax_config("vqgan", FIXTURES / "vqgan", None).vocab_count == 64  # any size is read
    with pytest.raises(ConversionError, match="VQGAN of another size"):
        convert.check_flax_config("vqgan", FIXTURES / "vqgan", "mini")


def test_a_wrong_shape_is_named_with_both_shapes():
    config, _ = convert.dalle_config_from_flax(LAYOUTS["configs"]["mini"])
    shapes = {k: tuple(v) for k, v in LAYOUTS["mini"].items()}
    shapes["lm_head/kernel"] = (7, 7)
    with pytest.raises(ConversionError, match=r"lm_head/kernel -> lm_head.weight: file \(7, 7\)"):
        convert.dalle_bart_plan(shapes, config, False)


def test_cli_converts_and_checks_the_model_size(tmp_path, capsys):
    source = tmp_path / "flax" / "dalle-mini"
    shutil.copytree(FIXTURES / "dalle", source)
    shutil.copytree(FIXTURES / "vqgan", tmp_path / "flax" / convert.VQGAN_REPO_NAME)  # found beside it
    root = tmp_path / "out"
    # the fixture is tiny: as "mini" its sizes are refused, naming the difference
    assert main(["convert", "--from", str(source), "--model", "mini", "--models-root", str(root), "--quiet"]) == 2
    assert "embed_count 32 (the mini model has 1024)" in capsys.readouterr().err
    assert not root.exists() or not list(root.rglob("*.pt*"))
    assert (
        main(
            [
                "convert",
                "--from",
                str(source),
                "--model",
                "mini",
                "--models-root",
                str(root),
                "--any-size",
                "--dtype",
                "float32",
            ]
        )
        == 0
    )
    assert read_state_dict(root / "vqgan" / "detoker.pt")["embedding.weight"].dtype == torch.float32
    assert "converted the mini model" in capsys.readouterr().out


def test_missing_folder_and_vqgan_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        convert.convert_model(tmp_path / "nowhere", "mini", tmp_path / "out")
    (tmp_path / "alone").mkdir()
    with pytest.raises(FileNotFoundError, match="--vqgan"):
        convert.convert_model(tmp_path / "alone", "mini", tmp_path / "out")
