"""What several test modules share: small model sizes, a tokenizer, a model folder, helpers.

Test modules take these as fixtures (or import the constants from here); no test module
imports from another.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
import torch

from dalle_core import DalleConfig, TextTokenizer, VQGanConfig
from dalle_core.lab.random_weights import make_vocab, randomize, write_tokenizer
from dalle_core.pipeline import expanded_indices
from dalle_core.tokenizer import pack_text_tokens

# Small tensors gain nothing from threads, and on a busy machine a second thread waiting
# at every barrier makes each op 10-100x slower. Tests that time or need threads set their own.
torch.set_num_threads(1)
# Progress bars asked for by the code under test stay quiet (dalle_core.trace.progress_bar).
os.environ["TQDM_DISABLE"] = "1"
ROOT = Path(__file__).resolve().parents[1]

# A small model with min-dalle's fixed parts (64 text tokens, 256 image tokens, 16384 codes).
SMALL = DalleConfig(
    layer_count=2, attention_head_count=4, embed_count=64, glu_embed_count=96,
    text_vocab_count=200, image_vocab_count=16384, name="small",
)
# A VQGAN small enough for tests: 2 levels, 4x4 tokens -> 8x8 pixels.
SMALL_VQGAN = VQGanConfig(vocab_count=64, embed_count=16, channel_counts=(16, 32), attention_levels=(1,),
                          block_count=1, group_count=8, name="small")


@pytest.fixture(scope="session")
def tokenizer() -> TextTokenizer:
    vocab, merges = make_vocab()
    return TextTokenizer(vocab, merges)


# A whole model in the course model's file layout, small enough to generate in milliseconds.
TEST_TINY = DalleConfig(
    layer_count=2, attention_head_count=4, embed_count=32, glu_embed_count=48, text_vocab_count=200,
    image_vocab_count=64, image_token_count=16, image_code_count=64, image_start_token=64, name="test-tiny",
)


def write_tiny_model(folder: Path) -> Path:
    """config.json, tokenizer, encoder/decoder/detoker .pt: what `MinDalle(folder, model="tiny")` reads."""
    from dalle_core import DalleBartDecoder, DalleBartEncoder, VQGanDetokenizer

    write_tokenizer(folder)
    (folder / "config.json").write_text(json.dumps({"dalle": TEST_TINY.to_dict(), "vqgan": SMALL_VQGAN.to_dict()}))
    modules = {"encoder": DalleBartEncoder(TEST_TINY), "decoder": DalleBartDecoder(TEST_TINY),
               "detoker": VQGanDetokenizer(SMALL_VQGAN)}
    for seed, (name, module) in enumerate(modules.items()):
        torch.save(randomize(module, seed=seed + 20).state_dict(), folder / f"{name}.pt")
    return folder


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def prepared(tokenizer) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """`prepared(encoder, text, image_count)`: the decoder's inputs for a prompt, as the pipeline
    makes them: encoder_state (2n, 64, E) and attention_mask (2n, 1, 1, 64)."""

    def prepare(encoder: torch.nn.Module, text: str, image_count: int) -> tuple[torch.Tensor, torch.Tensor]:
        text_tokens = pack_text_tokens(tokenizer.tokenize(text), 64)
        with torch.no_grad():
            encoder_state = encoder(text_tokens)
        indices = expanded_indices(image_count)
        text_tokens, encoder_state = text_tokens[indices], encoder_state[indices]
        return encoder_state, text_tokens.ne(1)[:, None, None, :]

    return prepare


@pytest.fixture(scope="session")
def import_file() -> Callable[[str], ModuleType]:
    """`import_file("scripts/export_html.py")`: a script of the repository (scripts/, bench/ are no
    packages) imported as a module; its own folder is importable while it loads."""

    def load(relative: str) -> ModuleType:
        path = ROOT / relative
        spec = importlib.util.spec_from_file_location(f"_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        return module

    return load
# ---------------------------------------------------------------------------- hub/: a file server on 127.0.0.1

HUB_PREFIX = "/kuprel/min-dalle/resolve/main/"  # min-dalle's files under the Hugging Face URL scheme
FAST = dict(progress=False, retries=2, timeout=2.0, backoff=0.01)  # fetch_model options for tests
FLAX_FIXTURES = Path(__file__).parent / "fixtures" / "flax"  # a tiny DalleBart and VQGAN saved by Flax


def converted_modules(root: Path) -> tuple:
    """The encoder, decoder and detokenizer converted from the Flax fixtures into `root`, loaded strictly."""
    from dalle_core.hub.convert import check_flax_config
    from dalle_core.weights import expected_module, load_module, model_files

    bart, _ = check_flax_config("bart", FLAX_FIXTURES / "dalle", None)
    configs = {"encoder": bart, "decoder": bart, "detoker": check_flax_config("vqgan", FLAX_FIXTURES / "vqgan", None)}
    files = model_files(root, "mini")
    return tuple(load_module(expected_module(role, config), getattr(files, role), torch.float32, "cpu")
                 for role, config in configs.items())


@dataclass
class Served:
    """What the test server holds and how it misbehaves; shared with its handler."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # URL path -> content
    drop_once: set[str] = field(default_factory=set)  # send half, then close
    fail: dict[str, int] = field(default_factory=dict)  # URL path -> status, every time
    hang: set[str] = field(default_factory=set)
    ignore_range: bool = False
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range) of each request
    release: threading.Event = field(default_factory=threading.Event)

    def requests_for(self, name: str) -> list[str | None]:
        return [rng for path, rng in self.log if path.endswith("/" + name)]


class FileHandler(BaseHTTPRequestHandler):
    """Serves `served.files` with Range support, and drops, fails or hangs where told."""

    served: Served  # set on a subclass per server

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        served = self.served
        served.log.append((self.path, self.headers.get("Range")))
        if self.path in served.hang:
            served.release.wait(5.0)  # far past the client's time-out; released at teardown
        elif self.path in served.fail:
            self.send_error(served.fail[self.path])
        elif self.path not in served.files:
            self.send_error(404)
        else:
            self.send_file(served.files[self.path])

    def send_file(self, data: bytes) -> None:
        start, range_header = 0, self.headers.get("Range")
        if range_header and not self.served.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        is_page = data.startswith(b"<html>")  # a login page, as captive portals and misconfigured mirrors send
        self.send_header("Content-Type", "text/html; charset=utf-8" if is_page else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.served.drop_once:
            self.served.drop_once.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True  # the client sees EOF before Content-Length
            return
        self.wfile.write(body)


@pytest.fixture
def server(monkeypatch):
    """A file server on 127.0.0.1 (empty; tests add files), with no mirror set in the environment."""
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("DALLE_CORE_BASE_URL", raising=False)
    served = Served()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("BoundHandler", (FileHandler,), {"served": served}))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield served
    served.release.set()
    httpd.shutdown()
    httpd.server_close()
