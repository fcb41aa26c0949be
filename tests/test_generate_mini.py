"""One whole generation at DALL·E Mini's size, from files in min-dalle's layout, against min-dalle."""
from __future__ import annotations

import pytest
import torch

from dalle_core import DalleBartDecoder, DalleBartEncoder, DalleConfig, VQGanDetokenizer
from dalle_core.pipeline import MinDalle

from . import oracle
from .conftest import randomize, write_tokenizer


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory):
    """Random mini-size weights saved as float16, as the published files are."""
    root = tmp_path_factory.mktemp("models")
    write_tokenizer(root / "dalle_bart_mini")
    config = DalleConfig.mini()
    for name, module in (("encoder", DalleBartEncoder(config)), ("decoder", DalleBartDecoder(config))):
        randomize(module, seed=len(name))
        torch.save({k: v.half() for k, v in module.state_dict().items()}, root / "dalle_bart_mini" / f"{name}.pt")
        del module
    (root / "vqgan").mkdir()
    torch.save(randomize(VQGanDetokenizer(), seed=9).state_dict(), root / "vqgan" / "detoker.pt")
    return root


def test_generate_images_equals_min_dalle(mini_root, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ours = MinDalle(mini_root, is_mega=False, is_verbose=False)
        ours_images = ours.generate_images("a red circle on a green background", 7, 1)
        del ours
        requested = []
        # min-dalle asks the hub for config.json on every construction: refuse, and count
        monkeypatch.setattr(oracle.reference.requests, "get", lambda url, *a, **k: requested.append(url))
        ref = oracle.MinDalle(str(mini_root), is_mega=False, is_verbose=False, device="cpu")
        ref_images = ref.generate_images("a red circle on a green background", 7, grid_size=1)
        torch.set_grad_enabled(True)  # min-dalle's module import turned it off
    finally:
        torch.set_num_threads(threads)
    assert all(url.endswith("config.json") for url in requested)
    assert ours_images.shape == ref_images.shape == (1, 256, 256, 3)
    assert torch.equal(ours_images, ref_images)
