"""Shapes and counts written in the package's docstrings and comments stay true.

A course about shapes goes stale when the model changes size and its prose does not. Two
checks read every docstring and comment (no module is run):

- a traced tensor's name followed by a literal shape, `logits (32, 1, 16416)`, must be the
  shape the meta-device trace gives: for DALL·E Mega's 4x4 grid, the shapes the model layer
  writes down; in course/, for the shipped course model at a 1x1, 2x2 or 3x3 grid;
- course/ describes the shipped course model: its token grids (`16x16`), counts (`256 image
  tokens`, `1024 codes`, `a 256-step loop`) and literal shape tuples must be sizes its
  config.json defines.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from dalle_core.config import TINY_ROOT, load_model_config
from dalle_core.course.data import IMAGE_SIZE, POSITIONS
from dalle_core.lab.shapes import trace_shapes

PACKAGE = Path(__file__).resolve().parents[1] / "dalle_core"
# hub/ documents files and downloads, not tensors
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "hub" not in p.relative_to(PACKAGE).parts)
COURSE = sorted((PACKAGE / "course").glob("*.py"))


def prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring line of a module."""
    source = path.read_text(encoding="utf-8")
    found = [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
             if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                first = node.body[0].lineno
                found += [(first + i, line) for i, line in enumerate(docstring.splitlines())]
    return found


@pytest.fixture(scope="module")
def mega():
    return trace_shapes("mega", 4)


@pytest.fixture(scope="module")
def course_traces():
    return [trace_shapes("tiny", grid) for grid in (1, 2, 3)]


def shipped_sizes() -> dict[str, set[int]]:
    """What course/ text may call a token grid side, a count, or a dimension of a shape."""
    config, vqgan = load_model_config(TINY_ROOT)
    side, factor = config.image_token_side, vqgan.downsample_factor
    assert side * factor == IMAGE_SIZE, "the data set's pictures and the VQGAN's output differ in size"
    position_grid = round(len(POSITIONS) ** 0.5)
    return {
        # token grid, pictures, pixels per token, the 3x3 grid of positions, 1x1 / 3x3 convolutions
        "grid": {side, IMAGE_SIZE, factor, position_grid, 1, 3},
        "image tokens": {config.image_token_count},
        "text tokens": {config.text_token_count},
        "codes": {vqgan.vocab_count, config.image_code_count},
        # dimensions: RGB, pictures, the token grid and sequence (with its start token), text, codes; the
        # transformer's layers, width and lm_head outputs; 2n and 4n rows of one image
        "dimension": {1, 2, 3, 4, IMAGE_SIZE, side, config.image_token_count, config.image_token_count + 1,
                      config.text_token_count, vqgan.vocab_count, vqgan.embed_count, config.layer_count,
                      config.embed_count, config.image_vocab_count + 1},
    }


@pytest.fixture(scope="module")
def course_sizes() -> dict[str, set[int]]:
    return shipped_sizes()


LITERAL_SHAPE = r"\((\d+(?:, \d+)*,?)\)"  # (32, 1, 16416)
SHAPE = r"\(((?:[\w*+/ ]{1,24}, )+[\w*+/ ]{1,24})\)"  # (B, 3, 64, 64), (2n, 64), (n, h*w)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_named_shapes_are_the_traced_ones(path, mega, course_traces):
    traces = course_traces if path.parent == PACKAGE / "course" else [mega]
    names = sorted({r.name for r in mega.records}, key=len, reverse=True)
    pattern = re.compile(rf"(?<![\w\]])({'|'.join(map(re.escape, names))}) {LITERAL_SHAPE}")
    wrong = []
    for line, text in prose(path):
        for match in pattern.finditer(text):
            name, shape = match.group(1), tuple(int(d) for d in match.group(2).rstrip(",").split(", "))
            if all(shape != trace.shape(name) for trace in traces):
                traced = ", ".join(f"{trace.shape(name)} ({trace.config.name}, {trace.grid_size}x{trace.grid_size})"
                                   for trace in traces)
                wrong.append(f"line {line}: {name} {shape}, traced {traced}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_course_text_speaks_of_the_shipped_model(path, course_sizes):
    rules = [  # (pattern, which sizes its numbers may be, what it says)
        (r"\b(\d+)x(\d+)\b", "grid", "a grid"),
        (r"\b(\d+) image tokens?\b", "image tokens", "image tokens"),
        (r"\b(\d+)-step loop", "image tokens", "a decoding loop"),
        (r"\b(\d+) text (?:tokens|positions)\b", "text tokens", "text tokens"),
        (r"\b(\d+) codes\b", "codes", "codes"),
        (r"\btokens \([A-Za-z]\w*, (\d+)\)", "image tokens", "image tokens"),
        (SHAPE, "dimension", "a shape"),
    ]
    wrong = []
    for line, text in prose(path):
        for pattern, kind, meaning in rules:
            for match in re.finditer(pattern, text):
                items = [item.strip() for group in match.groups() for item in group.split(",")]
                numbers = [int(item) for item in items if item.isdigit()]  # "2n", "h*w", "1 + T" are symbols
                bad = [n for n in numbers if n not in course_sizes[kind]]
                if bad:
                    wrong.append(f"line {line}: {match.group(0)!r} names {meaning} the shipped model does not have "
                                 f"({bad}; its config allows {sorted(course_sizes[kind])})")
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_stale_text(tmp_path, mega, course_sizes):
    """The drift the checks exist for: text written for the first, 8x8-token course model."""
    stale = tmp_path / "stale.py"
    stale.write_text('"""pixels (B, 3, 64, 64) -> z_e (B, E, 8, 8) -> tokens (B, 64); an 8x8 grid of 64 image '
                     'tokens, an eighth of the 512 codes, a 64-step loop."""\n# logits (32, 1, 16384)\n')
    with pytest.raises(AssertionError) as course_error:
        test_course_text_speaks_of_the_shipped_model(stale, course_sizes)
    for words in ("(B, E, 8, 8)", "tokens (B, 64)", "8x8", "64 image tokens", "512 codes", "64-step loop"):
        assert words in str(course_error.value), words
    with pytest.raises(AssertionError, match=r"logits \(32, 1, 16384\), traced \(32, 1, 16416\)"):
        test_named_shapes_are_the_traced_ones(stale, mega, [])
