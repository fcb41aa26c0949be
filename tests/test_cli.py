from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dalle_core", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # a Python process per run (torch's import): 7 s here
def test_generate_writes_grid(tiny_root, tmp_path):
    out = tmp_path / "grid.png"
    result = run("generate", "a red circle", "--model", "tiny", "--models-root", str(tiny_root),
                 "--grid-size", "3", "--seed", "5", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (24, 24)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


@pytest.mark.slow  # a Python process per run (torch's import): 14 s here
def test_generate_same_seed_same_file(tiny_root, tmp_path):
    outs = [tmp_path / "a.png", tmp_path / "b.png"]
    for out in outs:
        run(
            "generate",
            "blue",
            "--model",
            "tiny",
            "--models-root",
            str(tiny_root),
            "--seed",
            "2",
            "--out",
            str(out),
            "--quiet",
        )
    assert outs[0].read_bytes() == outs[1].read_bytes()


@pytest.mark.slow  # a Python process per run (torch's import): 16 s here
def test_bad_input_clear_error_no_file(tiny_root, tmp_path):
    out = tmp_path / "grid.png"
    result = run(
        "generate", "red", "--model", "tiny", "--models-root", str(tiny_root), "--grid-size", "0", "--out", str(out)
    )
    assert result.returncode == 2 and "grid_size must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
    result = run(
        "generate", "red", "--model", "tiny", "--models-root", str(tiny_root), "--out", str(tmp_path / "no" / "x.png")
    )
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = run("generate", "red", "--models-root", str(tmp_path), "--model", "mini", "--out", str(out))
    assert result.returncode == 2 and "missing" in result.stderr and "fetch" in result.stderr


def test_careless_input_one_line_exit_2(tiny_root, tmp_path, capsys):
    """In process (the subprocess tests above show the same main() from the command line)."""
    from dalle_core.__main__ import main

    out = tmp_path / "grid.png"
    for args, words in [
        (["红色的圆形在左上角"], "reads English"),
        (["a red circle", "--grid-size", "1000"], "available"),
    ]:
        code = main(
            ["generate", *args, "--model", "tiny", "--models-root", str(tiny_root), "--out", str(out), "--quiet"]
        )
        captured = capsys.readouterr()
        assert code == 2 and captured.out == ""
        assert words in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
        assert not list(tmp_path.iterdir())
