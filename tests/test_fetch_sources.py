"""fetch's second source: dalle-mini's Flax originals, converted after download, and the
fall-through from min-dalle's files when they answer 404. A local server serves the tiny
Flax fixtures (tests/fixtures/flax/) under the Hugging Face URL scheme."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dalle_core.__main__ import main
from dalle_core.hub import fetch
from dalle_core.hub.fetch import DownloadError
from dalle_core.weights import model_files

from .conftest import FAST, FLAX_FIXTURES, HUB_PREFIX, converted_modules

DALLE_PREFIX = "/dalle-mini/dalle-mini/resolve/main/"
VQGAN_PREFIX = "/dalle-mini/vqgan_imagenet_f16_16384/resolve/main/"


@pytest.fixture
def originals(server):
    """The Flax fixtures published as the repos dalle-mini/dalle-mini and the VQGAN's
    (hub layout) and as a plain directory under /mirror/."""
    for prefix, mirror, folder, names in (
        (
            DALLE_PREFIX,
            "/mirror/dalle-mini/",
            "dalle",
            ("config.json", "vocab.json", "merges.txt", "flax_model.msgpack"),
        ),
        (VQGAN_PREFIX, "/mirror/vqgan_imagenet_f16_16384/", "vqgan", ("config.json", "flax_model.msgpack")),
    ):
        for name in names:
            data = (FLAX_FIXTURES / folder / name).read_bytes()
            server.files[prefix + name] = data
            server.files[mirror + name] = data
    return server


def encoder_matches_flax(root) -> bool:
    """Does the encoder converted into `root` give Flax's own encoder states on the fixture's tokens?"""
    expected = np.load(FLAX_FIXTURES / "expected.npz")
    encoder, _, _ = converted_modules(root)
    with torch.no_grad():
        state = encoder(torch.from_numpy(expected["text_tokens"]).long()).numpy()
    return np.allclose(state, expected["encoder_state"], atol=1e-4, rtol=1e-4)


def test_dalle_mini_source_gives_a_working_models_root(tmp_path, originals):
    root = tmp_path / "models"
    files = fetch.fetch_model("mini", root, source="dalle-mini", endpoint=originals.url, check_sizes=False, **FAST)
    assert all(path.is_file() for path in files)
    assert not list(root.rglob("*.part"))
    assert not (root / "flax").exists()  # the Flax downloads are deleted once converted
    assert encoder_matches_flax(root)
    assert all(path.startswith(("/dalle-mini/dalle-mini/", "/dalle-mini/vqgan")) for path, _ in originals.log)
    # complete per the conversion record: no second download, and verify is content
    requests = len(originals.log)
    fetch.fetch_model("mini", root, source="dalle-mini", endpoint=originals.url, check_sizes=False, **FAST)
    assert len(originals.log) == requests
    assert fetch.verify("mini", root, check_tensors=False) == []
    record = json.loads((model_files(root, "mini").encoder.parent / "converted.json").read_text())
    assert record["converted_from"] == "dalle-mini/dalle-mini"


def test_404_from_min_dalle_falls_through_to_dalle_mini(tmp_path, originals, capsys, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv("HF_ENDPOINT", originals.url)  # the mirror convention serves both sources
    fetch.fetch_model("mini", root, check_sizes=False, keep_flax=True, **FAST)
    paths = [path for path, _ in originals.log]
    assert paths[0] == HUB_PREFIX + "vocab_mini.json"  # min-dalle first: 404, not retried
    assert not any(p.startswith(HUB_PREFIX) for p in paths[1:])
    assert DALLE_PREFIX + "flax_model.msgpack" in paths and VQGAN_PREFIX + "flax_model.msgpack" in paths
    assert "trying the dalle-mini source" in capsys.readouterr().err
    assert (root / "flax" / "dalle-mini" / "flax_model.msgpack").is_file()  # keep_flax
    assert encoder_matches_flax(root)


def test_only_the_missing_part_is_fetched_from_the_originals(tmp_path, originals):
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, source="dalle-mini", endpoint=originals.url, check_sizes=False, **FAST)
    model_files(root, "mini").detoker.unlink()
    originals.log.clear()
    fetch.fetch_model("mini", root, source="dalle-mini", endpoint=originals.url, check_sizes=False, **FAST)
    assert {path for path, _ in originals.log} == {VQGAN_PREFIX + "config.json", VQGAN_PREFIX + "flax_model.msgpack"}


def test_no_fallback_and_every_source_gone(tmp_path, server):
    with pytest.raises(DownloadError) as caught:
        fetch.fetch_model("mini", tmp_path, endpoint=server.url, fallback=False, **FAST)
    assert caught.value.status == 404 and "dalle-mini/dalle-mini" not in caught.value.url
    with pytest.raises(DownloadError) as caught:
        fetch.fetch_model("mini", tmp_path, endpoint=server.url, **FAST)
    message = str(caught.value)
    assert "every source answered HTTP 404" in message
    assert f"{server.url}{HUB_PREFIX}vocab_mini.json" in message and f"{server.url}{DALLE_PREFIX}config.json" in message


def test_plain_directory_serves_the_originals_in_repo_subfolders(tmp_path, originals):
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, source="dalle-mini", base_url=originals.url + "/mirror", check_sizes=False, **FAST)
    assert all(path.startswith("/mirror/") for path, _ in originals.log)
    assert encoder_matches_flax(root)


def test_flax_download_resumes_after_a_dropped_connection(tmp_path, originals):
    originals.drop_once.add(VQGAN_PREFIX + "flax_model.msgpack")
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, source="dalle-mini", endpoint=originals.url, check_sizes=False, **FAST)
    ranges = originals.requests_for("flax_model.msgpack")
    assert any(r is not None and r.startswith("bytes=") for r in ranges)
    assert model_files(root, "mini").detoker.is_file()


def test_verify_checks_converted_files_against_their_record(tmp_path, originals):
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, source="dalle-mini", endpoint=originals.url, check_sizes=False, **FAST)
    encoder = model_files(root, "mini").encoder
    data = bytearray(encoder.read_bytes())
    data[-100] ^= 0xFF
    encoder.write_bytes(bytes(data))
    problems = fetch.verify("mini", root, check_tensors=False)
    assert len(problems) == 1 and "encoder.pt" in problems[0] and "sha256" in problems[0]


def test_cli_source_option_refuses_a_model_of_other_sizes(tmp_path, originals, capsys):
    status = main(["fetch", "--model", "mini", "--models-root", str(tmp_path), "--source", "dalle-mini",
                   "--endpoint", originals.url, "--quiet", "--no-fallback"])
    assert status == 2  # the fixture is tiny, not DALL·E Mini: the conversion says so
    assert "does not describe DALL·E Mini" in capsys.readouterr().err
    assert not model_files(tmp_path, "mini").encoder.exists()
    # refused from config.json alone: the weights were never requested
    assert originals.requests_for("flax_model.msgpack") == []
