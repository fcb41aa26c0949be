"""One whole generation at DALL·E Mini's size, from files in min-dalle's layout, against min-dalle."""
from __future__ import annotations

import pytest
import torch

from dalle_core.lab.random_weights import write_random_model
from dalle_core.memory import peak_rss_mib, reset_peak_rss
from dalle_core.pipeline import MinDalle

from . import oracle


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory):
    """Random mini-size weights saved as float16, as the published files are."""
    return write_random_model(tmp_path_factory.mktemp("models"), "mini", torch.float16)


@pytest.mark.slow  # DALL·E Mini-size weights written, loaded twice and run: minutes
def test_generate_images_equals_min_dalle(mini_root, monkeypatch):
    reset_peak_rss()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ours = MinDalle(mini_root, is_mega=False, is_verbose=False)
        ours_images = ours.generate_images("a red circle on a green background", 7, 1)
        del ours
        requested = []
        # min-dalle asks the hub for config.json on every construction: refuse, and count
        monkeypatch.setattr(oracle.reference.requests, "get", lambda url, *a, **k: requested.append(url))
        # min-dalle counts on its import having turned autograd off for the whole process
        # (tests/oracle.py undoes that); with autograd on, its 256 steps keep every
        # activation for a backward pass, and this test peaked at 19 GB
        with torch.no_grad():
            ref = oracle.MinDalle(str(mini_root), is_mega=False, is_verbose=False, device="cpu")
            ref_images = ref.generate_images("a red circle on a green background", 7, grid_size=1)
    finally:
        torch.set_num_threads(threads)
    assert all(url.endswith("config.json") for url in requested)
    assert ours_images.shape == ref_images.shape == (1, 256, 256, 3)
    assert torch.equal(ours_images, ref_images)
    # both programs, one after the other, each about 2.4 GiB: more means a leak or a graph kept
    assert peak_rss_mib() < 4096, f"peak resident memory {peak_rss_mib():.0f} MiB"
