"""Hygiene of the notebook course: every notebook is executed, clean, structured, and deterministic.

strict nbval (`pytest --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks`) re-runs the
notebooks and compares their outputs; these tests are the fast, static half, plus one check
that the outputs do not depend on torch's thread count.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MAIN = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((NOTEBOOKS / "solutions").glob("[0-9][0-9]_*.ipynb"))
ALL = MAIN + SOLUTIONS
IGNORE_OUTPUT = "# NBVAL_IGNORE_OUTPUT"
# notebooks whose outputs are re-computed with 2 torch threads and compared with the stored 1-thread ones
THREAD_CHECKED = ("01_tokenizer.ipynb", "02_encoder.ipynb")  # the others take minutes with 2 threads on a busy 2-core CPU


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def name(path: Path) -> str:
    return str(path.relative_to(NOTEBOOKS))


def sanitize_patterns() -> list[tuple[str, str]]:
    """The regex/replace pairs of notebooks/sanitize.cfg, as nbval reads them."""
    text = (NOTEBOOKS / "sanitize.cfg").read_text(encoding="utf-8")
    return re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)


def text_outputs(cell) -> list[str]:
    """The text nbval compares (streams and text/plain), sanitized; images are not compared."""
    texts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            texts.append(output.data.get("text/plain", ""))
    joined = "".join(texts)
    for regex, replace in sanitize_patterns():
        joined = re.sub(regex, replace, joined)
    return joined


def test_the_course_has_its_notebooks():
    assert len(MAIN) >= 8, [p.name for p in MAIN]
    assert (NOTEBOOKS / "sanitize.cfg").is_file()


@pytest.mark.parametrize("path", ALL, ids=name)
def test_every_code_cell_was_executed_in_order(path):
    counts = [cell.execution_count for cell in code_cells(read(path))]
    assert None not in counts, f"{name(path)}: code cell {counts.index(None) + 1} has no execution count"
    assert counts == list(range(1, len(counts) + 1)), f"{name(path)}: not run top to bottom in a fresh kernel: {counts}"


@pytest.mark.parametrize("path", ALL, ids=name)
def test_no_errors_and_no_stderr(path):
    for i, cell in enumerate(code_cells(read(path)), 1):
        for output in cell.outputs:
            assert output.output_type != "error", f"{name(path)} cell {i}: {output.ename}: {output.evalue}"
            assert not (output.output_type == "stream" and output.name == "stderr"), (
                f"{name(path)} cell {i} wrote to stderr: {output.text[:300]!r}"
            )


@pytest.mark.parametrize("path", ALL, ids=name)
def test_first_code_cell_uses_one_thread(path):
    """dalle_core.lab.notebook's start() or setup(): one thread unless DALLE_CORE_THREADS says otherwise."""
    first = code_cells(read(path))[0].source
    assert "from dalle_core.lab.notebook import" in first and re.search(r"\b(start|setup)\(\)", first), \
        f"{name(path)}: the first code cell must call dalle_core.lab.notebook's start() or setup() (one thread)"


@pytest.mark.parametrize("path", ALL, ids=name)
def test_no_memory_addresses_or_unmarked_timings(path):
    for i, cell in enumerate(code_cells(read(path)), 1):
        if cell.source.lstrip().startswith(IGNORE_OUTPUT):
            continue
        text = text_outputs(cell)
        assert not re.search(r"0x[0-9a-fA-F]{6,}", text), f"{name(path)} cell {i} prints a memory address"
        assert "perf_counter" not in cell.source and "timeit" not in cell.source, (
            f"{name(path)} cell {i} times something: mark it {IGNORE_OUTPUT}"
        )


@pytest.mark.parametrize("path", MAIN, ids=name)
def test_opens_with_what_you_will_learn(path):
    cells = read(path).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), f"{name(path)}: no title cell"
    assert re.search(r"^## What you will learn", cells[0].source, re.MULTILINE | re.IGNORECASE), (
        f"{name(path)}: the first cell must have a 'What you will learn' section"
    )


@pytest.mark.parametrize("path", MAIN, ids=name)
def test_ends_with_exercises_and_has_solutions(path):
    cells = read(path).cells
    exercises = [c for c in cells if c.cell_type == "markdown" and re.search(r"^## Exercises", c.source, re.MULTILINE)]
    assert exercises, f"{name(path)}: no '## Exercises' section"
    numbered = re.findall(r"^\d+\. ", exercises[-1].source, re.MULTILINE)
    assert len(numbered) >= 3, f"{name(path)}: {len(numbered)} exercises, at least 3 expected"
    assert (NOTEBOOKS / "solutions" / path.name).is_file(), f"{name(path)}: no solutions/{path.name}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=name)
def test_every_solution_belongs_to_a_notebook(path):
    assert (NOTEBOOKS / path.name).is_file(), f"{name(path)} has no notebook {path.name}"


def test_thread_count_from_the_environment(monkeypatch):
    """DALLE_CORE_THREADS overrides start()/setup()'s thread count (make test-portable sets 2)."""
    from dalle_core.lab.notebook import thread_count

    monkeypatch.delenv("DALLE_CORE_THREADS", raising=False)
    assert thread_count(1) == 1
    monkeypatch.setenv("DALLE_CORE_THREADS", "2")
    assert thread_count(1) == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("DALLE_CORE_THREADS", bad)
        with pytest.raises(ValueError, match="DALLE_CORE_THREADS"):
            thread_count(1)


@pytest.mark.slow  # two notebooks re-executed in a kernel
@pytest.mark.parametrize("notebook_name", THREAD_CHECKED)
def test_outputs_do_not_depend_on_the_thread_count(notebook_name):
    """Re-run with 2 torch threads; every checked text output must equal the stored 1-thread one."""
    from nbclient import NotebookClient

    path = NOTEBOOKS / notebook_name
    stored = read(path)
    rerun = read(path)
    first = code_cells(rerun)[0]
    assert "= start()" in first.source  # dalle_core.lab.notebook.start: one thread unless told
    first.source = first.source.replace("= start()", "= start(threads=2)")
    NotebookClient(rerun, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    for i, (old, new) in enumerate(zip(code_cells(stored), code_cells(rerun)), 1):
        if old.source.lstrip().startswith(IGNORE_OUTPUT):
            continue
        assert text_outputs(new) == text_outputs(old), f"{notebook_name} cell {i} differs with 2 threads"
