"""The command line, `python -m dalle_core`: one real process, the rest through main(argv) in this one."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image

from dalle_core.__main__ import main


def generate(tiny_root, *args: str) -> int:
    return main(["generate", *args, "--model", "tiny", "--models-root", str(tiny_root), "--quiet"])


@pytest.mark.slow  # a Python process (torch's import): 7 s here
def test_python_m_dalle_core_writes_a_grid(tiny_root, tmp_path):
    out = tmp_path / "grid.png"
    result = subprocess.run(
        [sys.executable, "-m", "dalle_core", "generate", "a red circle", "--model", "tiny", "--models-root",
         str(tiny_root), "--grid-size", "3", "--seed", "5", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (24, 24)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_generate_writes_a_grid_and_the_same_seed_the_same_file(tiny_root, tmp_path, capsys):
    outs = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    for out, seed in zip(outs, ("2", "2", "3")):
        assert generate(tiny_root, "blue", "--grid-size", "2", "--seed", seed, "--out", str(out)) == 0
    assert Image.open(outs[0]).size == (16, 16)
    assert outs[0].read_bytes() == outs[1].read_bytes() != outs[2].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png"]  # no partial file left
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "args, words",
    [
        (["红色的圆形在左上角"], "reads English"),
        (["a red circle", "--grid-size", "1000"], "available"),
        (["red", "--grid-size", "0"], "grid_size must be at least 1"),
        (["red", "--top-k", "0"], "top_k must be at least 1"),
    ],
)
def test_bad_input_one_line_exit_2_no_file(tiny_root, tmp_path, capsys, args, words):
    code = generate(tiny_root, *args, "--out", str(tmp_path / "grid.png"))
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert words in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err and not list(tmp_path.iterdir())


def test_missing_folder_and_missing_files_are_named(tiny_root, tmp_path, capsys):
    assert generate(tiny_root, "red", "--out", str(tmp_path / "no" / "x.png")) == 2
    assert "does not exist" in capsys.readouterr().err
    code = main(["generate", "red", "--models-root", str(tmp_path), "--model", "mini", "--out",
                 str(tmp_path / "x.png"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "missing" in err and "fetch" in err


# ---- threads: DALLE_CORE_THREADS, else one, as the notebooks' start() -----------------------
@pytest.fixture
def threads_restored():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_one_thread_by_default_and_the_variable_when_set(tiny_root, tmp_path, monkeypatch, threads_restored):
    from dalle_core.lab.notebook import setup

    out = str(tmp_path / "x.png")
    monkeypatch.delenv("DALLE_CORE_THREADS", raising=False)
    torch.set_num_threads(2)
    assert generate(tiny_root, "red", "--out", out) == 0 and torch.get_num_threads() == 1
    setup()
    assert torch.get_num_threads() == 1  # the notebooks choose the same
    monkeypatch.setenv("DALLE_CORE_THREADS", "2")
    assert generate(tiny_root, "red", "--out", out) == 0 and torch.get_num_threads() == 2
    setup()
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_thread_count_is_one_line(tiny_root, tmp_path, monkeypatch, capsys, value, threads_restored):
    monkeypatch.setenv("DALLE_CORE_THREADS", value)
    assert generate(tiny_root, "red", "--out", str(tmp_path / "x.png")) == 2
    err = capsys.readouterr().err
    assert "DALLE_CORE_THREADS must be a positive integer" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_threads_option_of_the_long_commands(monkeypatch, capsys, threads_restored):
    """train and evaluate keep their --threads; a bad value is refused like any bad input."""
    monkeypatch.delenv("DALLE_CORE_THREADS", raising=False)
    assert main(["evaluate", "--prompts", "0", "--threads", "2"]) == 2
    assert "--prompts must be at least 1" in capsys.readouterr().err and torch.get_num_threads() == 2
    assert main(["train", "--quick", "--threads", "-3"]) == 2
    assert "--threads must be a positive integer" in capsys.readouterr().err
