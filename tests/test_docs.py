"""The documentation stays true to the code: the generated shape cheat sheet, links, slides."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def load_script(name: str):
    """Import scripts/<name>.py as a module (scripts/ is not a package)."""
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cheatsheet():
    return load_script("shape_cheatsheet")


@pytest.fixture(scope="module")
def rendered(cheatsheet):
    return cheatsheet.render()


def test_shape_cheatsheet_matches_the_code(cheatsheet, rendered):
    committed = cheatsheet.TARGET.read_text(encoding="utf-8")
    if committed != rendered:
        import difflib

        diff = "".join(list(difflib.unified_diff(
            committed.splitlines(True), rendered.splitlines(True), "docs/shapes.md", "generated"))[:40])
        pytest.fail(f"docs/shapes.md has drifted from dalle_core; regenerate it with "
                    f"`{cheatsheet.COMMAND}` and commit it.\n{diff}")


def test_cheatsheet_has_the_walkthrough_shapes(rendered):
    mega = rendered.split("## mega:")[1].split("## mini:")[0]
    for name, shape in [
        ("text_tokens", "(2, 64)"), ("encoder_state", "(2, 64, 2048)"),
        ("encoder_state expanded", "(32, 64, 2048)"), ("attention_mask", "(32, 1, 1, 64)"),
        ("attention_state", "(24, 64, 256, 2048)"), ("image_tokens", "(16, 257)"),
        ("token_indices", "(256,)"), ("prev_tokens", "(16, 1)"), ("decoder_state", "(32, 1, 2048)"),
        ("logits", "(32, 1, 16416)"), ("logits sliced", "(32, 16384)"),
        ("logits superconditioned", "(16, 16384)"),
    ]:
        assert f"| `{name}` | `{shape}` |" in mega, name
    assert "| mega | 1,110,220,800 | 1,477,746,688 | 46,709,891 |" in rendered  # min-dalle's counts
    assert "| mega | float32 | 192.0 MiB | 768.0 MiB | 1.7 GiB | 3.0 GiB |" in rendered


def test_a_wrong_formula_stops_the_generation(cheatsheet, monkeypatch):
    from dalle_core.shapes import trace_shapes

    traced = trace_shapes("mini", 2)
    _, vqgan = cheatsheet.configs("mini")
    cheatsheet.shape_rows(traced, vqgan)  # the real formulas agree with the trace
    real = cheatsheet.formula

    def wrong(name, vq):
        return ("L", "2n", "S", "E") if name == "attention_state" else real(name, vq)

    monkeypatch.setattr(cheatsheet, "formula", wrong)
    with pytest.raises(AssertionError, match="attention_state is traced as"):
        cheatsheet.shape_rows(traced, vqgan)


def test_formula_terms_evaluate_with_implicit_products(cheatsheet):
    values = {"n": 9, "g": 3, "P": 256, "C": [1, 2, 3], "S": 256}
    assert [cheatsheet.evaluate(t, values) for t in ("4n", "gP", "P/8", "C[2]", "S+1")] == [36, 768, 32, 3, 257]


def test_check_mode_reports_a_stale_file(cheatsheet, rendered, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cheatsheet, "render", lambda: rendered)  # tracing once per session is enough
    stale = tmp_path / "shapes.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert cheatsheet.main(["--check", "--out", str(stale)]) == 1
    assert cheatsheet.COMMAND in capsys.readouterr().err
    fresh = tmp_path / "fresh.md"
    assert cheatsheet.main(["--out", str(fresh)]) == 0
    assert cheatsheet.main(["--check", "--out", str(fresh)]) == 0



def test_architecture_shapes_are_the_traced_ones():
    from dalle_core.shapes import trace_shapes

    mega = trace_shapes("mega", 4)
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|[^|\n]*\| `([^`]+)` \| `(\([0-9, ]*\))` \|", text, flags=re.MULTILINE)
    assert len(rows) >= 12, rows
    for name, shape in rows:
        assert shape == str(mega.shape(name)), f"docs/architecture.md says {name} {shape}, the code {mega.shape(name)}"
