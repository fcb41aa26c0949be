"""Hygiene of the notebook course: every notebook is executed, clean, structured, and deterministic.

strict nbval (`pytest --nbval --nbval-sanitize-with tests/nbval-sanitize.cfg notebooks`) re-runs the
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
SANITIZE = ROOT / "tests" / "nbval-sanitize.cfg"  # nbval's regex/replace pairs, out of the learners' folder
MAIN = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((NOTEBOOKS / "solutions").glob("[0-9][0-9]_*.ipynb"))
ALL = MAIN + SOLUTIONS
IGNORE_OUTPUT = "# NBVAL_IGNORE_OUTPUT"
# notebooks whose outputs are re-computed with 2 torch threads and compared with the stored 1-thread ones
THREAD_CHECKED = (
    "01_tokenizer.ipynb",
    "02_encoder.ipynb",
)  # the others take minutes with 2 threads on a busy 2-core CPU


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def name(path: Path) -> str:
    return str(path.relative_to(NOTEBOOKS))


def sanitize_patterns() -> list[tuple[str, str]]:
    """The regex/replace pairs of tests/nbval-sanitize.cfg, as nbval reads them."""
    text = SANITIZE.read_text(encoding="utf-8")
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
    assert SANITIZE.is_file()
    assert not (NOTEBOOKS / "conftest.py").exists() and not (NOTEBOOKS / "sanitize.cfg").exists()  # learners browse it


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
def test_first_code_cell_is_the_packaged_start(path):
    """One short setup cell from dalle_core.lab.notebook (one thread, PNG figures, the traced
    shapes); no notebook defines its own helpers there."""
    first = code_cells(read(path))[0].source
    lines = [line for line in first.splitlines() if line.strip()]
    assert len(lines) <= 4, f"{name(path)}: the first code cell has {len(lines)} lines, at most 4"
    assert "from dalle_core.lab.notebook import" in first and ("start()" in first or "setup()" in first), (
        f"{name(path)}: the first code cell must call dalle_core.lab.notebook.start() or setup()"
    )


@pytest.mark.parametrize("path", ALL, ids=name)
def test_no_notebook_defines_check_shape(path):
    for i, cell in enumerate(code_cells(read(path)), 1):
        assert "def check_shape" not in cell.source, f"{name(path)} cell {i}: import check_shape from start()"


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
    count = len(exercise_spans(read(path)))
    assert count >= 3, f"{name(path)}: {count} exercises, at least 3 expected"
    assert (NOTEBOOKS / "solutions" / path.name).is_file(), f"{name(path)}: no solutions/{path.name}"


# How an exercise is marked, in a notebook and in its solution alike: a markdown cell whose first
# line is the heading "### Exercise N" (N = 1, 2, ...; a title may follow: "### Exercise 2: why 2n?"),
# placed after the notebook's "## Exercises" heading. The exercise runs from that cell to the next
# "### Exercise" heading (or the end of the notebook), and some code cell in it calls `cmp(` or
# `check(` or `check_answer(` (dalle_core.lab.exercises): the check a learner runs on the answer. The check cells are
# the same text in the notebook and in its solution, so the solution proves that the check passes.
EXERCISE_HEADING = re.compile(r"\A### Exercise (\d+)\b")
CHECK_CALL = re.compile(r"(?<![\w.])(cmp|check|check_answer)\(")


def exercise_spans(notebook: nbformat.NotebookNode) -> dict[int, list]:
    """Exercise number -> the cells from its heading to the next exercise heading (or the end)."""
    spans: dict[int, list] = {}
    current = None
    for cell in notebook.cells:
        match = EXERCISE_HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if match:
            current = int(match.group(1))
            assert current not in spans, f"exercise {current} appears twice"
            spans[current] = []
        elif current is not None:
            spans[current].append(cell)
    return spans


def check_cells(cells: list) -> list[str]:
    return [c.source for c in cells if c.cell_type == "code" and CHECK_CALL.search(c.source)]


@pytest.mark.parametrize("path", MAIN, ids=name)
def test_every_exercise_has_a_check_cell_that_its_solution_passes(path):
    notebook, solution = read(path), read(NOTEBOOKS / "solutions" / path.name)
    spans, solved = exercise_spans(notebook), exercise_spans(solution)
    assert spans, f"{name(path)}: no '### Exercise N' headings"
    assert sorted(spans) == list(range(1, len(spans) + 1)), f"{name(path)}: exercises numbered {sorted(spans)}"
    assert sorted(solved) == sorted(spans), (
        f"solutions/{path.name} answers exercises {sorted(solved)}, not {sorted(spans)}"
    )
    headings = [c.source for c in notebook.cells if c.cell_type == "markdown"]
    first = next(i for i, s in enumerate(headings) if EXERCISE_HEADING.match(s))
    assert any(re.search(r"^## Exercises", s, re.MULTILINE) for s in headings[:first]), (
        f"{name(path)}: the exercises must come after the '## Exercises' heading"
    )
    for number, cells in spans.items():
        checks = check_cells(cells)
        assert checks, f"{name(path)} exercise {number}: no code cell calls cmp( or check( after it"
        missing = [c for c in checks if c not in check_cells(solved[number])]
        assert not missing, f"solutions/{path.name} exercise {number} lacks the check cell {missing[0][:120]!r}"
        for cell in solved[number]:  # the solution's checks ran and passed: no "not answered yet"
            for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
                assert "not answered yet" not in output.get("text", ""), (
                    f"solutions/{path.name} exercise {number} leaves an answer as ..."
                )


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
    NotebookClient(
        rerun, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    for i, (old, new) in enumerate(zip(code_cells(stored), code_cells(rerun)), 1):
        if old.source.lstrip().startswith(IGNORE_OUTPUT):
            continue
        assert text_outputs(new) == text_outputs(old), f"{notebook_name} cell {i} differs with 2 threads"


def headings(path: Path) -> set[str]:
    return {
        line.lstrip("#").strip()
        for cell in read(path).cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("#")
    }


def test_the_seed_index_points_at_sections_that_exist():
    """00's seed index names, for each question, a notebook and the heading that answers it."""
    cell = next(
        c
        for c in read(NOTEBOOKS / "00_overview.ipynb").cells
        if c.cell_type == "markdown" and c.source.startswith("## The seed walkthrough")
    )
    links = re.findall(r"\[\d\d\]\((\d\d_\w+\.ipynb)\),((?: the)? \"[^|;\[]*)", cell.source)
    assert len(links) >= 10, links
    for notebook, quoted in links:
        for heading in re.findall(r"\"([^\"]+)\"", quoted):
            assert heading in headings(NOTEBOOKS / notebook), f"00's seed index: {notebook} has no heading {heading!r}"


# ---- every number the prose states is one an output prints ------------------------------------
# A number in a markdown cell with two or more significant digits ("0.28", "16", "2,730", "88 %")
# must equal a number printed by some code cell of the same notebook, so that a re-executed
# notebook whose outputs moved fails here instead of leaving its prose behind. Headings (section
# and step numbers), the **Time:** line (a reading estimate), LaTeX, links and citation years are
# not prose claims. What remains and is a
# definition or an outside fact rather than a measurement is listed below, per notebook, with why.
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])")
CITATION_YEAR = re.compile(r"(?:et al\.?|\()[^()\n]{0,40}?\b(?:19|20)\d\d\b|\b(?:19|20)\d\d\)")
DEFINED_NUMBERS: dict[str, set[str]] = {
    # the pipeline diagram's "decoder ×256": DALL·E's 256 image tokens per picture, a definition the
    # tokenizer notebook has no tensor to print
    "01_tokenizer.ipynb": {"256"},
    # the 8-bit colour scale: pixels are `clip(0, 1) * 255`, colour levels 0..255 (a definition)
    "05_vqgan.ipynb": {"255"},
    "solutions/05_vqgan.ipynb": {"255"},
    "07_training.ipynb": {
        "2.6",  # DALL·E Mega's parameters in billions (encoder + decoder): an outside fact, not computed here
        "81",  # exercise 3's sample, 27 prompts x 3 seeds: a definition (the solution prints it)
    },
}


def significant_digits(text: str) -> int:
    digits = text.replace(",", "").replace(".", "").lstrip("0")
    return len(digits.rstrip("0")) if "." not in text else len(digits)


def prose_numbers(source: str) -> list[str]:
    """The numbers a markdown cell states, outside headings, LaTeX, links and citation years."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("#", "**Time:**"))]
    text = "\n".join(lines)
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " ", text, flags=re.S)  # LaTeX
    text = re.sub(r"\]\([^)]*\)|<[^>]+>|https?://\S+", " ", text)  # link targets, tags, addresses
    text = CITATION_YEAR.sub(" ", text)
    found = []
    for match in NUMBER.finditer(text):
        number = match.group(0)
        if significant_digits(number) >= 2:
            found.append(number)
    return found


def printed_numbers(notebook: nbformat.NotebookNode) -> set[float]:
    values = set()
    for cell in code_cells(notebook):
        for match in NUMBER.finditer(text_outputs(cell)):
            values.add(float(match.group(0).replace(",", "")))
    return values


@pytest.mark.parametrize("path", ALL, ids=name)
def test_every_number_in_the_prose_is_printed(path):
    notebook = read(path)
    printed = printed_numbers(notebook)
    allowed = DEFINED_NUMBERS.get(name(path), set())
    missing = sorted(
        {number for cell in notebook.cells if cell.cell_type == "markdown" for number in prose_numbers(cell.source)
         if number not in allowed and float(number.replace(",", "")) not in printed},
        key=lambda n: float(n.replace(",", "")),
    )
    assert not missing, (
        f"{name(path)}: the prose states {missing}, which no output prints: print what the text claims, "
        "or list a definition in DEFINED_NUMBERS with the reason"
    )
