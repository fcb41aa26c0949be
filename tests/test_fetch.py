"""fetch.py against a local HTTP server that misbehaves on purpose (tests/conftest.py's `server`).

The server serves small made-up files under the Hugging Face URL scheme and under a plain directory,
honours Range requests, logs every request, and can be told to drop the connection mid-file once, answer
404 or 500, ignore Range, or hang past the client's time-out. The file table is replaced by the test's own
sizes and hashes.
"""
from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from torch import nn

from dalle_core import weights
from dalle_core.__main__ import main
from dalle_core.hub import fetch
from dalle_core.hub.fetch import DownloadError, RemoteFile
from dalle_core.weights import expected_module, model_files

from .conftest import FAST, HUB_PREFIX

# ---------------------------------------------------------------------------- files


def checkpoint_bytes(tmp_path: Path, name: str, state: dict[str, torch.Tensor]) -> bytes:
    path = tmp_path / f"made_{name}"
    torch.save(state, path)
    return path.read_bytes()


@pytest.fixture
def published(tmp_path, monkeypatch, server):
    """Small stand-ins for the mini model's five files, published on the server (hub
    layout and /models/ directory), with the file table pointing at their sizes and
    hashes, and the module verify checks checkpoints against (weights.check_checkpoint's)
    replaced by a tiny one that fits them."""
    contents = {
        "vocab_mini.json": json.dumps({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "Ġa": 4}).encode(),
        "merges_mini.txt": "#version: 0.2\nĠ a\nb c\n".encode(),
        "encoder_mini.pt": checkpoint_bytes(tmp_path, "enc", {"weight": torch.arange(6.0).view(2, 3)}),
        "decoder_mini.pt": checkpoint_bytes(tmp_path, "dec", {"weight": torch.ones(2, 3)}),
        "detoker.pt": checkpoint_bytes(tmp_path, "det", {"weight": torch.zeros(2, 3)}),
    }
    roles = {"vocab_mini.json": "vocab", "merges_mini.txt": "merges", "encoder_mini.pt": "encoder",
             "decoder_mini.pt": "decoder", "detoker.pt": "detoker"}
    table = tuple(
        RemoteFile(name, roles[name],
                   None if roles[name] in ("vocab", "merges") else len(data),
                   None if roles[name] in ("vocab", "merges") else hashlib.sha256(data).hexdigest())
        for name, data in contents.items()
    )
    monkeypatch.setattr(fetch, "REMOTE_FILES", {"mini": table, "mega": fetch.REMOTE_FILES["mega"]})
    monkeypatch.setattr(weights, "expected_module", lambda role, model: nn.Linear(3, 2, bias=False))
    for name, data in contents.items():
        server.files[HUB_PREFIX + name] = data
        server.files["/models/" + name] = data
    return contents


def local_bytes(root: Path) -> dict[str, bytes]:
    files = model_files(root, "mini")
    names = ("vocab_mini.json", "merges_mini.txt", "encoder_mini.pt", "decoder_mini.pt", "detoker.pt")
    return {name: path.read_bytes() for name, path in zip(names, files)}


def leftovers(root: Path) -> list[Path]:
    return sorted(root.rglob("*.part"))


# ---------------------------------------------------------------------------- fetching


def test_full_fetch_into_min_dalle_layout(tmp_path, server, published):
    root = tmp_path / "models"
    files = fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    assert files == model_files(root, "mini")
    assert files.encoder == root / "dalle_bart_mini" / "encoder.pt"
    assert files.detoker == root / "vqgan" / "detoker.pt"
    assert local_bytes(root) == published
    assert leftovers(root) == []
    assert sorted(path for path, _ in server.log) == sorted(HUB_PREFIX + name for name in published)
    assert fetch.verify("mini", root) == []


def test_resume_after_a_dropped_connection_uses_range(tmp_path, server, published):
    server.drop_once.add(HUB_PREFIX + "encoder_mini.pt")
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    ranges = server.requests_for("encoder_mini.pt")
    size = len(published["encoder_mini.pt"])
    assert ranges == [None, f"bytes={size // 2}-"]
    assert model_files(root, "mini").encoder.read_bytes() == published["encoder_mini.pt"]
    assert leftovers(root) == []


@pytest.mark.parametrize("ignore_range", [False, True], ids=["resumes", "server-ignores-range"])
def test_a_part_left_by_an_earlier_run(tmp_path, server, published, ignore_range):
    """The download asks for the rest of a .part file; a server that ignores the Range header
    and sends the whole file (200) makes it restart, never append."""
    server.ignore_range = ignore_range
    root = tmp_path / "models"
    target = model_files(root, "mini").decoder
    target.parent.mkdir(parents=True)
    data = published["decoder_mini.pt"]
    fetch.part_path(target).write_bytes(data[:100])
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    assert server.requests_for("decoder_mini.pt") == ["bytes=100-"]
    assert target.read_bytes() == data


def test_complete_part_is_checked_and_moved_without_a_request(tmp_path, server, published):
    root = tmp_path / "models"
    target = model_files(root, "mini").detoker
    target.parent.mkdir(parents=True)
    fetch.part_path(target).write_bytes(published["detoker.pt"])
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    assert server.requests_for("detoker.pt") == []
    assert target.read_bytes() == published["detoker.pt"]


def test_no_request_at_all_when_every_file_is_complete(tmp_path, server, published, monkeypatch):
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    count = len(server.log)

    def no_network(*args, **kwargs):
        raise AssertionError("fetch_model touched the network although every file was present")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("HF_ENDPOINT", "not a url")  # not even resolved
    files = fetch.fetch_model("mini", root, **FAST)
    assert len(server.log) == count
    assert files == model_files(root, "mini")


def test_only_missing_or_incomplete_files_are_fetched(tmp_path, server, published):
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    files = model_files(root, "mini")
    files.vocab.unlink()
    files.encoder.write_bytes(b"short")  # wrong size: fetched again
    server.log.clear()
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    assert sorted(path for path, _ in server.log) == [HUB_PREFIX + "encoder_mini.pt", HUB_PREFIX + "vocab_mini.json"]
    assert local_bytes(root) == published


# ---------------------------------------------------------------------------- failures


def test_404_names_the_url_and_suggests_the_mirror(tmp_path, server, published):
    del server.files[HUB_PREFIX + "decoder_mini.pt"]
    root = tmp_path / "models"
    with pytest.raises(DownloadError) as caught:
        fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    message = str(caught.value)
    assert "404" in message and f"{server.url}{HUB_PREFIX}decoder_mini.pt" in message
    assert "endpoint" in message and "mirror" in message
    assert caught.value.status == 404
    assert server.requests_for("decoder_mini.pt") == [None]  # a 404 is not retried
    assert not model_files(root, "mini").decoder.exists()


def test_500_is_retried_then_reported(tmp_path, server, published):
    server.fail[HUB_PREFIX + "encoder_mini.pt"] = 500
    root = tmp_path / "models"
    with pytest.raises(DownloadError) as caught:
        fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    assert "HTTP 500" in str(caught.value) and "3 attempt" in str(caught.value)
    assert len(server.requests_for("encoder_mini.pt")) == FAST["retries"] + 1
    assert not model_files(root, "mini").encoder.exists()


def test_500_that_recovers_succeeds(tmp_path, server, published, monkeypatch):
    path = HUB_PREFIX + "encoder_mini.pt"
    server.fail[path] = 503
    sleep = fetch.time.sleep

    def heal_then_sleep(seconds):
        server.fail.pop(path, None)
        sleep(seconds)

    monkeypatch.setattr(fetch.time, "sleep", heal_then_sleep)
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    assert len(server.requests_for("encoder_mini.pt")) == 2
    assert model_files(root, "mini").encoder.read_bytes() == published["encoder_mini.pt"]


def test_hang_times_out_with_a_clear_error(tmp_path, server, published):
    server.hang.add(HUB_PREFIX + "vocab_mini.json")
    root = tmp_path / "models"
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        fetch.fetch_model("mini", root, endpoint=server.url, progress=False, retries=1, timeout=0.3, backoff=0.01)
    assert time.monotonic() - started < 3.0
    assert "timed out" in str(caught.value) and "2 attempt" in str(caught.value)
    assert not model_files(root, "mini").vocab.exists()
    assert leftovers(root) == []


def test_drop_on_every_attempt_keeps_the_part_and_says_so(tmp_path, server, published, monkeypatch):
    path = HUB_PREFIX + "detoker.pt"
    sleep = fetch.time.sleep

    def drop_again(seconds):
        server.drop_once.add(path)
        sleep(seconds)

    server.drop_once.add(path)
    monkeypatch.setattr(fetch.time, "sleep", drop_again)
    root = tmp_path / "models"
    with pytest.raises(DownloadError) as caught:
        fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    target = model_files(root, "mini").detoker
    assert not target.exists()
    part = fetch.part_path(target)
    assert part.exists() and str(part) in str(caught.value) and "resumes" in str(caught.value)
    assert published["detoker.pt"].startswith(part.read_bytes())
    server.log.clear()
    monkeypatch.setattr(fetch.time, "sleep", sleep)
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)  # resumes and completes
    assert server.requests_for("detoker.pt")[0].startswith("bytes=")
    assert target.read_bytes() == published["detoker.pt"]
    assert leftovers(root) == []


@pytest.mark.parametrize("index, change, error, role", [
    (2, {"sha256": "0" * 64}, "sha256", "encoder"),  # the bytes arrive, their hash is wrong
    (3, {"size": 1, "sha256": None}, "another file", "decoder"),  # refused before downloading
])
def test_a_file_that_is_not_the_published_one_leaves_nothing(tmp_path, server, published, monkeypatch,
                                                             index, change, error, role):
    table = list(fetch.REMOTE_FILES["mini"])
    remote = table[index]
    size = remote.size + change["size"] if "size" in change else remote.size
    table[index] = RemoteFile(remote.name, remote.role, size, change["sha256"])
    monkeypatch.setitem(fetch.REMOTE_FILES, "mini", tuple(table))
    root = tmp_path / "models"
    with pytest.raises(DownloadError, match=error):
        fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    assert not getattr(model_files(root, "mini"), role).exists()
    assert leftovers(root) == []


def test_a_web_page_instead_of_the_file_is_refused(tmp_path, server, published, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setitem(server.files, "/models/vocab_mini.json", b"<html>login</html>")  # sent as text/html
    with pytest.raises(DownloadError, match="web page"):
        fetch.fetch_model("mini", root, base_url=server.url + "/models", **FAST)
    assert not model_files(root, "mini").vocab.exists()


def test_offline_is_a_clear_error_after_the_retries(tmp_path, published):
    with socket.socket() as probe:  # a port that nothing listens on: connection refused, as offline
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = tmp_path / "models"
    with pytest.raises(DownloadError) as caught:
        fetch.fetch_model("mini", root, endpoint=f"http://127.0.0.1:{port}", **FAST)
    message = str(caught.value)
    assert "3 attempt" in message and "Connection" in message and "Check the network" in message
    assert "mirror" in message and not caught.value.retryable
    assert not list(root.rglob("*.json")) and leftovers(root) == []


def test_bad_options_are_refused_before_any_request(tmp_path, server, published):
    for options in (dict(retries=-1), dict(timeout=0), dict(source="pypi")):
        with pytest.raises(ValueError):
            fetch.fetch_model("mini", tmp_path, endpoint=server.url, **{**FAST, **options})
    with pytest.raises(ValueError, match="unknown model"):
        fetch.fetch_model("large", tmp_path, endpoint=server.url, **FAST)
    assert server.log == []


# ---------------------------------------------------------------------------- mirrors


def test_hf_endpoint_environment_variable_is_used(tmp_path, server, published, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, **FAST)
    assert len(server.log) == 5 and all(path.startswith(HUB_PREFIX) for path, _ in server.log)
    assert local_bytes(root) == published


def test_endpoint_argument_beats_the_environment(tmp_path, server, published, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: would fail
    monkeypatch.setenv("DALLE_CORE_BASE_URL", "http://127.0.0.1:9/models/")
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, endpoint=server.url + "/", **FAST)
    assert local_bytes(root) == published


def test_base_url_serves_a_plain_directory(tmp_path, server, published):
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, base_url=server.url + "/models", **FAST)
    assert sorted(path for path, _ in server.log) == sorted("/models/" + name for name in published)
    assert local_bytes(root) == published


def test_resolve_base_url_precedence(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("DALLE_CORE_BASE_URL", raising=False)
    hub = "/kuprel/min-dalle/resolve/main/"
    assert fetch.resolve_base_url() == "https://huggingface.co" + hub
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.com/")
    assert fetch.resolve_base_url() == "https://hf-mirror.com" + hub
    monkeypatch.setenv("DALLE_CORE_BASE_URL", "http://lab/models")
    assert fetch.resolve_base_url() == "http://lab/models/"
    assert fetch.resolve_base_url(endpoint="http://m") == "http://m" + hub
    assert fetch.resolve_base_url(base_url="http://files/x/") == "http://files/x/"
    with pytest.raises(ValueError, match="not both"):
        fetch.resolve_base_url(endpoint="http://m", base_url="http://files/")
    with pytest.raises(ValueError, match="scheme"):
        fetch.resolve_base_url(endpoint="hf-mirror.com")


# ---------------------------------------------------------------------------- verify


def test_verify_lists_missing_files_with_the_fetch_command(tmp_path, published):
    root = tmp_path / "empty"
    problems = fetch.verify("mini", root)
    assert len(problems) == 5
    assert all("missing" in p and f"fetch --model mini --models-root {root}" in p for p in problems)


def test_verify_catches_truncated_and_corrupt_files(tmp_path, server, published):
    root = tmp_path / "models"
    files = fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    encoder = files.encoder.read_bytes()
    files.encoder.write_bytes(encoder[:-10])  # truncated
    flipped = bytearray(files.decoder.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF  # same size, one byte wrong
    files.decoder.write_bytes(bytes(flipped))
    files.vocab.write_text("{not json", encoding="utf-8")
    problems = fetch.verify("mini", root)
    assert len(problems) == 3
    by_file = {p.split()[0]: p for p in problems}
    assert "bytes" in by_file[str(files.encoder)] and "delete it" in by_file[str(files.encoder)]
    assert "sha256" in by_file[str(files.decoder)]
    assert "JSON" in by_file[str(files.vocab)]


def test_verify_reads_the_checkpoint_when_no_hash_is_known(tmp_path, server, published, monkeypatch):
    root = tmp_path / "models"
    files = fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    monkeypatch.setitem(fetch.REMOTE_FILES, "mini", tuple(
        RemoteFile(r.name, r.role) for r in fetch.REMOTE_FILES["mini"]
    ))
    files.encoder.write_bytes(b"PK\x03\x04 not really a zip" + bytes(100))
    torch.save({"weight": torch.zeros(5, 5)}, files.detoker)  # readable, wrong shape
    problems = fetch.verify("mini", root)
    assert len(problems) == 2
    assert str(files.encoder) in problems[0] and "could not be read" in problems[0]
    assert str(files.detoker) in problems[1] and "wrong shapes" in problems[1]
    assert all("fetch --model mini" in p for p in problems)
    assert fetch.verify("mini", root, check_tensors=False) == []  # checkpoints not opened


def test_verify_mentions_a_resumable_part(tmp_path, published):
    root = tmp_path / "models"
    target = model_files(root, "mini").decoder
    target.parent.mkdir(parents=True)
    fetch.part_path(target).write_bytes(b"12345")
    problem = next(p for p in fetch.verify("mini", root) if str(target) in p)
    assert ".part" in problem and "resumes" in problem


# ---------------------------------------------------------------------------- command line


def test_cli_fetch_and_verify_exit_codes(tmp_path, server, published, capsys):
    """verify's 1 is its answer (the files have problems), not a failure of the command."""
    root = str(tmp_path / "models")
    assert main(["verify", "--model", "mini", "--models-root", root]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["fetch", "--model", "mini", "--models-root", root, "--endpoint", server.url, "--quiet"]) == 0
    assert main(["verify", "--model", "mini", "--models-root", root]) == 0
    model_files(root, "mini").encoder.write_bytes(b"oops")
    assert main(["verify", "--model", "mini", "--models-root", root]) == 1
    err = capsys.readouterr().err
    assert "1 problem" in err and "encoder.pt" in err


def test_cli_fetch_failure_is_exit_status_2_with_the_reason(tmp_path, server, published, capsys):
    root = str(tmp_path / "models")
    status = main(["fetch", "--model", "mini", "--models-root", root, "--base-url", server.url + "/nowhere",
                   "--quiet", "--retries", "0"])
    err = capsys.readouterr().err
    assert status == 2 and "error: every source answered HTTP 404" in err and "Traceback" not in err
    assert not any(p.is_file() for p in model_files(root, "mini"))


def test_cli_rejects_endpoint_together_with_base_url(capsys):
    with pytest.raises(SystemExit):
        main(["fetch", "--model", "mini", "--endpoint", "http://a", "--base-url", "http://b"])
    assert "not allowed with" in capsys.readouterr().err


def test_progress_bar_can_be_shown(tmp_path, server, published, capsys):
    root = tmp_path / "models"
    fetch.fetch_model("mini", root, endpoint=server.url, progress=True, retries=0, timeout=2.0)
    assert local_bytes(root) == published


# ---------------------------------------------------------------------------- the real table


def test_published_table_matches_the_layout():
    for model, table in fetch.REMOTE_FILES.items():
        assert sorted(r.role for r in table) == sorted(("vocab", "merges", "encoder", "decoder", "detoker"))
        suffix = "" if model == "mega" else "_mini"
        names = {r.role: r.name for r in table}
        assert names["encoder"] == f"encoder{suffix}.pt" and names["vocab"] == f"vocab{suffix}.json"
        for remote in table:
            assert remote.size is None or remote.size > 0
            assert remote.sha256 is None or (len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0)
            assert (remote.size is None) == (remote.sha256 is None)


def shape_only_checkpoint(module: nn.Module, path: Path, drop: str | None = None) -> None:
    """A checkpoint with the module's keys and shapes but one stored number per tensor
    (stride-0 views), so a full-size model's file costs a few hundred kilobytes."""
    state = {k: torch.zeros((), dtype=torch.float16).expand(v.shape)
             for k, v in module.state_dict().items() if k != drop}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


@pytest.mark.parametrize("model", ["mini", "mega"])
def test_verify_checks_keys_and_shapes_against_the_package_modules(tmp_path, monkeypatch, model):
    monkeypatch.setitem(fetch.REMOTE_FILES, model, tuple(
        RemoteFile(r.name, r.role) for r in fetch.REMOTE_FILES[model]))  # sizes of the real files don't apply
    files = model_files(tmp_path, model)
    other = "mega" if model == "mini" else "mini"
    shape_only_checkpoint(expected_module("encoder", model), files.encoder)
    shape_only_checkpoint(expected_module("decoder", other), files.decoder)  # the other model's
    shape_only_checkpoint(expected_module("detoker", model), files.detoker, drop="embedding.weight")
    problems = {p.split()[0]: p for p in fetch.verify(model, tmp_path)}
    assert str(files.encoder) not in problems
    assert "wrong shapes" in problems[str(files.decoder)] and "another model" in problems[str(files.decoder)]
    assert "missing keys: embedding.weight" in problems[str(files.detoker)]


@pytest.mark.parametrize("extra", [0, 7], ids=["part-complete", "part-too-long"])
def test_416_on_resume_of_a_file_of_unknown_size(tmp_path, server, published, extra):
    root = tmp_path / "models"
    target = model_files(root, "mini").vocab  # its size is not in the table
    target.parent.mkdir(parents=True)
    data = published["vocab_mini.json"]
    fetch.part_path(target).write_bytes(data + b"x" * extra)
    fetch.fetch_model("mini", root, endpoint=server.url, **FAST)
    expected = [f"bytes={len(data)}-"] if not extra else [f"bytes={len(data) + extra}-", None]
    assert server.requests_for("vocab_mini.json") == expected
    assert target.read_bytes() == data
    assert leftovers(root) == []


# ---------------------------------------------------------------------------- MinDalle


def test_min_dalle_fetches_only_when_allowed(tmp_path, server, published, monkeypatch):
    from dalle_core.pipeline import MinDalle
    from dalle_core.weights import CheckpointError

    root = tmp_path / "models"
    with pytest.raises(FileNotFoundError, match="allow_download=True"):
        MinDalle(root, is_mega=False, is_verbose=False)
    assert server.log == [] and not list(root.rglob("*.pt"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    # the stand-in files are fetched, then refused by strict loading: they are not a real model
    with pytest.raises(CheckpointError, match=r"encoder\.pt"):
        MinDalle(root, is_mega=False, is_verbose=False, allow_download=True)
    assert local_bytes(root) == published
