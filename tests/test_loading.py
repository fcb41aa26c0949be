"""Strict loading: clear errors for missing, truncated and wrong files; dtype conversion."""
from __future__ import annotations

import shutil

import pytest
import torch

from dalle_core import DalleBartDecoder, DalleBartEncoder, DalleConfig, TextTokenizer
from dalle_core.pipeline import MinDalle
from dalle_core.weights import CheckpointError, load_module, model_files

from .conftest import SMALL, write_tokenizer


def meta_encoder(config: DalleConfig = SMALL) -> DalleBartEncoder:
    with torch.device("meta"):
        return DalleBartEncoder(config)


@pytest.fixture
def encoder_file(tmp_path):
    path = tmp_path / "encoder.pt"
    torch.save({k: v.half() for k, v in DalleBartEncoder(SMALL).state_dict().items()}, path)
    return path


def test_float16_file_into_float32_and_bfloat16(encoder_file):
    module = load_module(meta_encoder(), encoder_file, torch.float32, "cpu")
    assert module.embed_tokens.weight.dtype == torch.float32 and not module.embed_tokens.weight.is_meta
    assert load_module(meta_encoder(), encoder_file, torch.bfloat16, "cpu").final_ln.weight.dtype == torch.bfloat16


def test_layer_norm_left_out_takes_default(encoder_file):
    """DALL·E Mini saves LayerNorms built without scale without their weight."""
    state = torch.load(encoder_file)
    del state["layers.0.self_attn_layer_norm.weight"]
    torch.save(state, encoder_file)
    module = load_module(meta_encoder(), encoder_file, torch.float32, "cpu")
    assert torch.equal(module.layers[0].self_attn_layer_norm.weight, torch.ones(SMALL.embed_count))


def test_missing_key_named(encoder_file):
    state = torch.load(encoder_file)
    del state["layers.1.glu.fc2.weight"]
    torch.save(state, encoder_file)
    with pytest.raises(CheckpointError, match=r"(?s)encoder\.pt.*missing keys: layers\.1\.glu\.fc2\.weight"):
        load_module(meta_encoder(), encoder_file, torch.float32, "cpu")


def test_unexpected_key_and_wrong_shape(encoder_file):
    state = torch.load(encoder_file)
    state["extra.weight"] = torch.zeros(1)
    state["embed_tokens.weight"] = torch.zeros(7, SMALL.embed_count)
    torch.save(state, encoder_file)
    with pytest.raises(
        CheckpointError, match=r"(?s)unexpected keys: extra\.weight.*embed_tokens\.weight: file \(7, 64\)"
    ):
        load_module(meta_encoder(), encoder_file, torch.float32, "cpu")


def test_file_of_another_model(encoder_file):
    with pytest.raises(CheckpointError, match="another model"):
        load_module(meta_encoder(DalleConfig.mini()), encoder_file, torch.float32, "cpu")


@pytest.mark.parametrize("cut", [0, 10, 0.5, -20])
def test_truncated_or_empty_file(encoder_file, cut):
    data = encoder_file.read_bytes()
    keep = int(len(data) * cut) if isinstance(cut, float) else (len(data) + cut if cut < 0 else cut)
    encoder_file.write_bytes(data[:keep])
    with pytest.raises(CheckpointError, match=r"encoder\.pt"):
        load_module(meta_encoder(), encoder_file, torch.float32, "cpu")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "encoder.pt"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(CheckpointError, match="fetch it again"):
        load_module(meta_encoder(), path, torch.float32, "cpu")


@pytest.mark.parametrize("name, text, words", [
    ("vocab.json", "{not json", "not valid JSON"),
    ("vocab.json", '["<s>", "<pad>"]', "not a JSON object"),
    ("vocab.json", '{"<s>": "zero"}', "not a vocabulary"),
    ("merges.txt", "#version: 0.2\nĠ a b\n", "not a BPE merges file"),
    ("merges.txt", "#version: 0.2\n", "not a BPE merges file"),
])
def test_broken_tokenizer_files_are_named(tmp_path, name, text, words):
    """The readers that TextTokenizer.from_files and `verify` share."""
    write_tokenizer(tmp_path)
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=words) as info:
        TextTokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert str(tmp_path / name) in str(info.value)


def test_missing_files_listed_with_their_places(tmp_path):
    write_tokenizer(tmp_path / "dalle_bart_mini")
    with pytest.raises(FileNotFoundError) as info:
        MinDalle(tmp_path, is_mega=False, is_verbose=False)
    message = str(info.value)
    files = model_files(tmp_path, "mini")
    assert "3 file(s)" in message
    for path in (files.encoder, files.decoder, files.detoker):
        assert str(path) in message
    assert str(files.vocab) not in message
    assert "python -m dalle_core fetch --model mini" in message


def test_no_network_when_files_present(tiny_root, tmp_path, monkeypatch):
    """The loader never opens a socket (min-dalle contacts the hub on every construction)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    root = tmp_path / "models"
    shutil.copytree(tiny_root, root)
    MinDalle(root, model="tiny", is_verbose=False).generate_image_tokens("red", 1, 1)


def test_mini_decoder_file_in_mega_layout_is_refused(tmp_path):
    small = DalleConfig.mini().replace(layer_count=1)
    path = tmp_path / "decoder.pt"
    torch.save(DalleBartDecoder(small).state_dict(), path)
    with torch.device("meta"):
        decoder = DalleBartDecoder(DalleConfig.mini().replace(layer_count=2))
    with pytest.raises(CheckpointError, match=r"missing keys: layers\.1\."):
        load_module(decoder, path, torch.float32, "cpu")


def test_atomic_write_leaves_the_whole_file_or_none(tmp_path):
    from dalle_core.weights import atomic_write

    target = tmp_path / "grid.png"
    with atomic_write(target) as partial:
        assert partial.suffix == ".png" and partial != target
        partial.write_bytes(b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
    with pytest.raises(OSError), atomic_write(target) as partial:  # a writer that fails half way
        partial.write_bytes(b"half")
        raise OSError("disk full")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
