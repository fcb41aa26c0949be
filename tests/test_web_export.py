"""`export-web`: each ONNX graph, run by onnxruntime, computes what the PyTorch model computes.

Compared on the shipped course model, within the tolerances below (float32 throughout; the
graphs use other kernels and another summation order than PyTorch):
- the encoder: encoder_state and the cross-attention keys and values, for several prompts;
- the decoder step: the logits at all 256 steps of real generations, the cache filled by the
  graph's own new keys and values, fed the tokens PyTorch drew;
- the detokenizer: pixels of a full grid and of partial grids (the first rows).
`pytest -s` prints the largest differences measured.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from dalle_core.__main__ import main
from dalle_core.course import web_export
from dalle_core.course.web_export import FILES, WebDetokenizer, export_web
from dalle_core.pipeline import MinDalle
from dalle_core.trace import recording

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is a dev dependency: pip install -e '.[dev]'")

# Largest absolute differences allowed between onnxruntime and PyTorch (docs/explorer.md quotes them)
TOLERANCES = {
    "encoder_state": 1e-4,  # values of order 1
    "encoder_keys_values": 1e-4,
    "logits": 2e-4,  # |logits| up to about 25
    "pixels": 1e-2,  # pixels 0..255
}
PROMPTS = [  # (prompt, supercondition factor) for the step comparison
    ("a red circle in the top left corner", 16.0),
    ("one small green star at the bottom right", 4.0),
    ("", 1.0),  # the empty prompt: both rows alike
    ("a purple triangle " * 30, 32.0),  # over 64 tokens: cut, </s> kept
]


@pytest.fixture(scope="module")
def model() -> MinDalle:
    return MinDalle(is_verbose=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "model"
    manifest = export_web(out, words=["a", "red", "circle"])  # the caption-word list has its own test
    return out, manifest


@pytest.fixture(scope="module")
def sessions(exported):
    out, _ = exported
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return {name: ort.InferenceSession(str(out / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
            for name in ("encoder", "decoder_step", "detokenizer")}


MEASURED: dict[str, float] = {}


def measure(name: str, got: np.ndarray, want: np.ndarray) -> None:
    difference = float(np.abs(got - want).max())
    MEASURED[name] = max(MEASURED.get(name, 0.0), difference)
    assert difference <= TOLERANCES[name], f"{name}: onnxruntime differs from PyTorch by {difference:.3g}"


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nlargest |onnxruntime - PyTorch|:", {k: f"{v:.2g}" for k, v in MEASURED.items()})


@pytest.mark.slow  # the export: about 10 s
def test_encoder_matches_pytorch(model, sessions):
    for prompt, _ in PROMPTS:
        text_tokens = model.text_tokens(prompt)  # (2, 64)
        encoder_state, keys_values = sessions["encoder"].run(None, {"text_tokens": text_tokens.numpy()})
        with torch.no_grad():
            want = model.encoder(text_tokens)
            want_keys_values = torch.stack([torch.stack(pair) for pair in model.decoder.encoder_keys_values(want)])
        assert encoder_state.shape == (2, 64, 128) and keys_values.shape == (3, 2, 2, 64, 128)
        measure("encoder_state", encoder_state, want.numpy())
        measure("encoder_keys_values", keys_values, want_keys_values.numpy())


@pytest.mark.slow
@pytest.mark.parametrize(("prompt", "supercondition_factor"), PROMPTS, ids=["circle", "star", "empty", "long"])
def test_decoder_step_matches_pytorch_at_all_256_steps(model, sessions, prompt, supercondition_factor):
    text_tokens = model.text_tokens(prompt)
    with recording(keep_values=True) as records:
        image_tokens = model.generate_image_tokens(prompt, seed=2, top_k=64,
                                                   supercondition_factor=supercondition_factor)
    want_logits = [r.value.numpy() for r in records if r.name == "logits"]  # each (2, 1, 1025)
    assert len(want_logits) == 256
    _, keys_values = sessions["encoder"].run(None, {"text_tokens": text_tokens.numpy()})
    attention_state = np.zeros((3, 4, 256, 128), np.float32)  # the cache, written here from the graph's outputs
    attention_mask = text_tokens.ne(1).numpy()[:, None, None, :]  # (2, 1, 1, 64)
    prev_token = model.config.image_start_token
    for i in range(256):
        logits, new_keys_values = sessions["decoder_step"].run(None, {
            "prev_tokens": np.array([[prev_token]]), "token_index": np.array([i]), "attention_mask": attention_mask,
            "encoder_keys_values": keys_values, "attention_state": attention_state,
        })
        assert new_keys_values.shape == (3, 4, 1, 128)
        attention_state[:, :, i] = new_keys_values[:, :, 0]
        measure("logits", logits, want_logits[i])
        prev_token = int(image_tokens[0, i])  # PyTorch's draw: both run the same sequence


@pytest.mark.slow
def test_detokenizer_matches_pytorch_on_full_and_partial_grids(model, sessions):
    image_tokens = model.generate_image_tokens("a blue square at the bottom", seed=3)[0]  # (256,)
    for rows in (1, 5, 16):
        tokens = image_tokens[: rows * 16].reshape(rows, 16)
        (pixels,) = sessions["detokenizer"].run(None, {"image_tokens": tokens.numpy()})
        assert pixels.shape == (4 * rows, 64, 3)
        with torch.no_grad():
            want = WebDetokenizer(model.detokenizer)(tokens)  # the package's VQGAN on the first rows
            if rows == 16:  # the same picture as the pipeline's own decoding, to float rounding
                torch.testing.assert_close(want, model.detokenizer.decode_images(image_tokens[None])[0],
                                           atol=1e-3, rtol=0)
        measure("pixels", pixels, want.numpy())


@pytest.mark.slow
def test_manifest_describes_the_files(exported, model):
    out, manifest = exported
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert set(manifest["files"]) == set(FILES)
    for name, record in manifest["files"].items():
        data = (out / name).read_bytes()
        assert record == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    step = manifest["graphs"]["decoder_step.onnx"]
    assert step["inputs"]["attention_state"]["shape"] == [3, 4, 256, 128]
    assert list(step["outputs"]) == ["logits", "new_keys_values"]  # the cache is not copied out
    assert manifest["graphs"]["detokenizer.onnx"]["inputs"]["image_tokens"]["shape"] == ["rows", 16]
    assert manifest["model"]["dalle"]["image_token_count"] == 256
    decoder_parameters = sum(p.numel() for p in model.decoder.parameters())
    assert manifest["model"]["parameters"]["decoder"] == decoder_parameters
    tokenizer = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    assert tokenizer["special_tokens"] == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    # The weights are the shipped float16 numbers, stored as float16: about 2 bytes a parameter, not 4.
    assert manifest["files"]["decoder_step.onnx"]["bytes"] < 2.5 * decoder_parameters


def test_caption_words_are_the_training_captions_words():
    words = web_export.caption_words(2000)
    assert {"red", "circle", "corner", "background", "triangle"} <= set(words)
    assert "dog" not in words and all(w == w.lower() and " " not in w for w in words)


def test_emoji_table_is_what_demojize_reads():
    from emoji import demojize

    table = web_export.emoji_table()
    assert table["names"]["👍"] == "thumbs_up" == demojize("👍", delimiters=("", ""))
    assert "🏻" in table["components"] and "👍" not in table["components"]


def test_bad_out_is_refused_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["export-web", "--out", str(a_file), "--quiet"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["export-web", "--out", str(tmp_path / "missing" / "web"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_failed_export_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "manifest.json").write_text("{}")

    def fail(*args, **kwargs):
        raise RuntimeError("the exporter failed")

    monkeypatch.setattr(web_export, "export_graph", fail)
    with pytest.raises(RuntimeError, match="the exporter failed"):
        export_web(out, words=["a"])
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind
    assert [p.name for p in out.iterdir()] == ["manifest.json"] and (out / "manifest.json").read_text() == "{}"
