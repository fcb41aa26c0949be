"""The lecturer's kit stays true to the notebooks: syllabus, decks, quiz bank, references, problem sets, site.

Everything here reads the notebooks as they are now (scripts/course_outline.py), so that when a
notebook's headings, **Time:** line, "You can now explain" list or tagged figures change, a test
names the session, deck or question to revise.
"""
from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SLOTS = {"Lecture": (50, 90), "Lab": (90, 90)}  # minutes a slot may have
DECK_MINUTES_PER_SLIDE = 2


def script(name: str):
    """scripts/<name>.py, imported by its name (the scripts import each other so)."""
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    return importlib.import_module(name)


outline = script("course_outline")
decks = script("decks")


# ---- the syllabus ----------------------------------------------------------------------------
SESSION = re.compile(r"^### (Lecture|Lab) (\d) · (.+?) \((\d+)-minute slot\)$", re.MULTILINE)
ROW = re.compile(r"^\| *(\d+) *\|([^|]*)\|([^|]*)\|$", re.MULTILINE)
NOTEBOOK_PART = re.compile(r"`(\d\d_\w+)` (read|exercises|all)$")
SECTION = re.compile(r"`(\d\d_\w+)` › ((?:\"[^\"]+\"(?:, )?)+)")


def sessions() -> list[dict]:
    text = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    found = []
    matches = list(SESSION.finditer(text))
    for match, following in zip(matches, matches[1:] + [None]):
        body = text[match.end(): following.start() if following else text.find("\n## ", match.end())]
        kind, number, title, slot = match.groups()
        found.append({"name": f"{kind} {number} ({title})", "kind": kind, "slot": int(slot), "body": body,
                      "rows": [(int(m), a.strip(), s.strip()) for m, a, s in ROW.findall(body)]})
    return found


def test_the_unit_has_four_lectures_and_three_labs():
    kinds = [s["kind"] for s in sessions()]
    assert kinds.count("Lecture") == 4 and kinds.count("Lab") == 3, kinds
    for session in sessions():
        low, high = SLOTS[session["kind"]]
        assert low <= session["slot"] <= high, session["name"]
        for part in ("**Goals.**", "**Sections:**", "**Reading:**", "**Hand in:**"):
            assert part in session["body"], f"{session['name']} has no {part}"
        assert session["rows"], f"{session['name']} has no minute plan"


def planned_minutes(session: dict) -> list[str]:
    """The plan's problems: notebook rows that differ from the notebook's own **Time:** line, deck rows
    that differ from the deck's slide count, and a total over the slot."""
    problems = []
    for minutes, activity, source in session["rows"]:
        if match := NOTEBOOK_PART.search(source):
            stem, part = match.groups()
            time = outline.time_of(outline.read(outline.notebook_path(stem)), stem)
            expected = {"read": time.read, "exercises": time.exercises, "all": time.total}[part]
            if minutes != expected:
                problems.append(f"{session['name']}: '{activity}' plans {minutes} min, but {stem}'s **Time:** line "
                                f"now says {expected} min ({part}): re-plan this session")
        elif match := re.search(r"deck `([\w-]+)`", source):
            deck = decks.parse(decks.DECKS / f"{match.group(1)}.md")
            expected = DECK_MINUTES_PER_SLIDE * len(deck.slides)
            if minutes != expected:
                problems.append(f"{session['name']}: the deck has {len(deck.slides)} slides, {expected} min, "
                                f"not {minutes}: re-plan this session")
    total = sum(minutes for minutes, _, _ in session["rows"])
    if total > session["slot"]:
        problems.append(f"{session['name']}: {total} planned minutes in a {session['slot']}-minute slot")
    return problems


@pytest.mark.parametrize("index", range(7), ids=lambda i: f"session{i}")
def test_each_session_fits_its_slot_by_the_notebooks_time_lines(index):
    session = sessions()[index]
    assert not planned_minutes(session), "\n".join(planned_minutes(session))


def test_a_time_line_that_changes_names_the_session_to_replan(monkeypatch):
    lab = next(s for s in sessions() if s["kind"] == "Lab")
    assert not planned_minutes(lab)
    real = outline.time_of
    monkeypatch.setattr(outline, "time_of", lambda nb, name="": outline.Time(real(nb, name).read + 25, 0))
    problems = planned_minutes(lab)
    assert any("re-plan this session" in p and lab["name"] in p for p in problems), problems


def work_at_home() -> dict:
    """The syllabus's plan of what does not fit a lab, as a session without a slot."""
    text = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    part = text.split("\n## Work at home", 1)[1].split("\n## ", 1)[0]
    return {"name": "Work at home", "kind": "Home", "slot": 10**6,
            "rows": [(int(m), a.strip(), s.strip()) for m, a, s in ROW.findall(part)]}


def test_every_notebook_is_planned_once_in_a_lab_or_at_home():
    home = work_at_home()
    assert home["rows"], "the syllabus has no work at home"
    assert not planned_minutes(home), "\n".join(planned_minutes(home))
    places: dict[tuple[str, str], list[str]] = {}
    for session in sessions() + [home]:
        for _, _, source in session["rows"]:
            if match := NOTEBOOK_PART.search(source):
                stem, part = match.groups()
                for half in ("read", "exercises") if part == "all" else (part,):
                    places.setdefault((stem, half), []).append(session["name"])
    for path in outline.lecture_notebooks():
        for half in ("read", "exercises"):
            where = places.get((path.stem, half), [])
            assert len(where) == 1, f"{path.stem} ({half}) is planned {len(where)} times: {where}"


def test_time_lines_are_read_in_both_wordings():
    import nbformat

    def notebook(line):
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# T\n\n{line}")])

    assert outline.time_of(notebook("**Time:** about 30 minutes (20 to read and run, 10 for the exercises).")) \
        == outline.Time(20, 10)
    assert outline.time_of(notebook("**Time:** roughly 45 minutes to read and run, 30 more for the exercises.")) \
        == outline.Time(45, 30)
    with pytest.raises(ValueError, match="do not add up"):
        outline.time_of(notebook("**Time:** about 30 minutes (20 to read and run, 20 for the exercises)."))
    with pytest.raises(ValueError, match="cannot read"):
        outline.time_of(notebook("**Time:** an afternoon."))


def test_every_notebook_and_heading_the_syllabus_names_exists():
    text = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    named = SECTION.findall(text)
    assert len(named) >= 15, named
    for stem, quoted in named:
        headings = outline.headings(outline.read(outline.notebook_path(stem)))
        for heading in re.findall(r"\"([^\"]+)\"", quoted):
            assert heading in headings, f"syllabus.md names {stem} › {heading!r}, which is not a heading there"
    for stem in set(re.findall(r"`(\d\d_\w+)`", text)):
        outline.notebook_path(stem)  # FileNotFoundError names the notebooks there


def test_every_lecture_has_its_deck_and_every_deck_a_lecture():
    text = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    named = re.findall(r"\*\*Deck:\*\* `([\w-]+)`", text)
    assert sorted(named) == sorted(p.stem for p in decks.deck_paths()) and len(named) == 4


def test_the_prompt_card_is_the_course_models_vocabulary():
    from dalle_core.course import data

    text = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    card = text.split("## The prompt card", 1)[1].split("\n## ", 1)[0]
    lists = dict(re.findall(r"^- (shapes|colours|positions|sizes|backgrounds): (.+)$", card, re.MULTILINE))
    assert lists["shapes"].split(", ") == list(data.SHAPES)
    assert lists["colours"].split(", ") == list(data.OBJECT_COLOURS)
    assert lists["positions"].split(", ") == list(data.POSITIONS)
    assert lists["sizes"].split(", ") == list(data.SIZES)
    assert lists["backgrounds"].split(", ") == list(data.BACKGROUND_COLOURS)
    prompts = re.findall(r"^- (an? [a-z ]+)$", card.split("Prompts that work", 1)[1], re.MULTILINE)
    assert len(prompts) >= 6
    backgrounds = {p.format(w) for p in data.BACKGROUND_PHRASES for ws in data.BACKGROUND_WORDS.values() for w in ws}
    phrases = sorted({w for words in (data.SHAPE_WORDS, data.COLOUR_WORDS, data.SIZE_WORDS, data.POSITION_PHRASES)
                      for ws in words.values() for w in ws} | backgrounds, key=len, reverse=True)
    for prompt in prompts:
        rest = prompt
        for phrase in phrases:
            rest = re.sub(rf"\b{re.escape(phrase)}\b", " ", rest)
        assert set(rest.split()) <= {"a", "an"}, f"{prompt!r} uses words outside the card: {rest.split()}"
        shape = [s for s in data.SHAPES if any(w in prompt for w in data.SHAPE_WORDS[s])]
        assert shape, f"{prompt!r} names no shape"


def test_every_reading_is_on_the_references_page():
    syllabus = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    references = (DOCS / "references.md").read_text(encoding="utf-8")
    readings = re.findall(r"\*\*Reading:\*\*(.*?)(?:\n\n|\Z)", syllabus, re.DOTALL)
    cited = {(surname, year) for r in readings
             for surname, year in re.findall(r"([A-Z][a-z][\w-]+)(?: et al\.)? (\d{4})\b", r)}
    assert len(cited) >= 10, cited
    for surname, year in cited:
        assert re.search(rf"\*\*[^*]*\b{surname}\b[^*]*{year}\.\*\*", references), (
            f"the syllabus cites {surname} {year}, which references.md lacks")


# ---- references and context ------------------------------------------------------------------
CITATIONS = {  # the course's citation list: key -> arXiv id or address
    "Ramesh et al. 2021": "2102.12092", "Lewis et al. 2020": "1910.13461", "Esser, Rombach & Ommer 2021": "2012.09841",
    "van den Oord, Vinyals & Kavukcuoglu 2017": "1711.00937", "Ho & Salimans 2022": "2207.12598",
    "Shazeer 2020": "2002.05202", "Shleifer, Weston & Ott 2021": "2110.09456",
    "Sennrich, Haddow & Birch 2016": "1508.07909", "Vaswani et al. 2017": "1706.03762", "Wu & He 2018": "1803.08494",
    "Fan, Lewis & Dauphin 2018": "1805.04833", "Dayma et al. 2021": "huggingface.co/dalle-mini/dalle-mini",
    "Kuprel 2022": "github.com/kuprel/min-dalle", "Ho, Jain & Abbeel 2020": "2006.11239",
    "Rombach et al. 2022": "2112.10752", "Ramesh et al. 2022": "2204.06125", "Saharia et al. 2022": "2205.11487",
    "Yu et al. 2022": "2206.10789", "Chang et al. 2023": "2301.00704",
    "Williams, Waterman & Patterson 2009": "10.1145/1498765.1498785",
}


def test_references_list_every_citation_with_what_to_read():
    text = (DOCS / "references.md").read_text(encoding="utf-8")
    entries = re.split(r"\n- ", text)
    for key, where in CITATIONS.items():
        entry = next((e for e in entries if e.startswith(f"**{key}.**")), None)
        assert entry is not None, f"references.md has no entry **{key}.**"
        assert where in entry, f"{key}: {where} missing"
        assert re.search(r"\b(Read|Section|Sections)\b", entry), f"{key}: no note on what to read"


CITE = re.compile(r"\b((?:van den )?[A-Z][a-z][\w-]*)((?:, [A-Z][a-z][\w-]*)*(?: (?:&|and) [A-Z][a-z][\w-]*)?)"
                  r"( et al\.)? \(?((?:19|20)\d\d)\b")
VENUES = {"NeurIPS", "ICML", "ACL", "CVPR", "ECCV", "ICLR"}  # "NeurIPS 2021": a venue, not an author


def test_every_citation_of_the_notebooks_and_decks_is_on_the_references_page():
    references = (DOCS / "references.md").read_text(encoding="utf-8")
    texts = {p.relative_to(ROOT).as_posix(): "\n".join(outline.markdown_lines(outline.read(p)))
             for p in sorted(outline.NOTEBOOKS.rglob("*.ipynb"))}
    texts |= {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in decks.deck_paths()}
    cited = {(m.group(1), m.group(4), where) for where, text in texts.items() for m in CITE.finditer(text)
             if m.group(1) not in VENUES}
    assert len({(name, year) for name, year, _ in cited}) >= 15, cited
    for name, year, where in sorted(cited):
        assert re.search(rf"\*\*[^*]*\b{re.escape(name)}\b[^*]*{year}\.\*\*", references), (
            f"{where} cites {name} {year}, which references.md lacks")


def test_context_covers_both_families_and_the_model_card():
    text = (DOCS / "context.md").read_text(encoding="utf-8")
    for name in ("DALL·E (Ramesh et al. 2021)", "Parti (Yu et al. 2022)", "Muse (Chang et al. 2023)",
                 "DDPM (Ho, Jain & Abbeel 2020)", "Latent diffusion (Rombach et al. 2022)",
                 "DALL·E 2 (Ramesh et al. 2022)", "Imagen (Saharia et al. 2022)", "Ho & Salimans 2022"):
        assert name in text, name
    assert "## Limitations and bias: the dalle-mini model card" in text
    closing = decks.parse(decks.deck_paths()[-1])
    titles = " ".join(slide.body.splitlines()[0] for slide in closing.slides if slide.body)
    for topic in ("Diffusion", "Muse", "model card", "Bias", "Misuse"):
        assert topic in titles, f"the last deck has no slide on {topic}"


# ---- the decks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", decks.deck_paths(), ids=lambda p: p.stem)
def test_deck_rules(path):
    deck = decks.parse(path)
    assert decks.MIN_SLIDES <= len(deck.slides) <= decks.MAX_SLIDES, (deck.name, len(deck.slides))
    for number, slide in enumerate(deck.slides, 1):
        assert slide.notes, f"{deck.name} slide {number} has no speaker notes"
        for block in slide.code_blocks():
            assert len(block) <= decks.MAX_CODE_LINES, f"{deck.name} slide {number}: a {len(block)}-line code block"
    for stem in deck.notebooks:
        outline.notebook_path(stem)
    for image in deck.images():
        assert (outline.NOTEBOOKS / image).is_file(), f"{deck.name}: {image} is not in notebooks/"


def test_every_figure_a_deck_uses_is_tagged_in_a_notebook():
    tagged = outline.figures()
    missing = {(deck.name, name) for deck in map(decks.parse, decks.deck_paths()) for name in deck.figures()
               if name not in tagged}
    assert not missing, ("figures the decks use that no notebook cell is tagged figure-<name> with: "
                         + ", ".join(f"{n} ({d})" for d, n in sorted(missing)))


def test_a_figure_is_written_from_the_tagged_cells_png(tmp_path, monkeypatch):
    import base64

    import nbformat

    png = base64.b64decode(b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
                           b"hQGAhKmMIQAAAABJRU5ErkJggg==")  # one pixel

    def tagged_cell():
        cell = nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": base64.b64encode(png).decode()})])
        cell.metadata["tags"] = ["figure-demo"]
        return cell

    cell = tagged_cell()
    path = tmp_path / "notebooks" / "00_demo.ipynb"
    path.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    monkeypatch.setattr(outline, "NOTEBOOKS", path.parent)
    assert outline.write_figures(tmp_path / "out", {"demo"})["demo"].read_bytes() == png
    with pytest.raises(KeyError, match="figure-absent"):
        outline.write_figures(tmp_path / "out", {"absent"})
    nbformat.write(nbformat.v4.new_notebook(cells=[cell, tagged_cell()]), path)
    with pytest.raises(ValueError, match="tagged twice"):
        outline.figures()


# ---- the quiz bank -------------------------------------------------------------------------------
def normal(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[`*_$]", "", text)).strip().lower()


def quiz() -> dict[str, list[dict]]:
    text = (DOCS / "quiz-bank.md").read_text(encoding="utf-8")
    bank: dict[str, list[dict]] = {}
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        number = section[:2]
        for question in re.split(r"^### ", section, flags=re.MULTILINE)[1:]:
            covers = re.search(r"\*\*Covers:\*\* \"([^\"]+)\"", question)
            bank.setdefault(number, []).append({
                "id": question.split("\n", 1)[0].strip(), "covers": covers.group(1) if covers else None,
                "has_answer": "**Answer.**" in question})
    return bank


@pytest.mark.parametrize("path", outline.lecture_notebooks(), ids=lambda p: p.stem)
def test_every_you_can_now_explain_item_has_a_question(path):
    items = outline.explain_items(outline.read(path))
    assert items, f"{path.name} has no 'You can now explain' list"
    questions = quiz().get(path.stem[:2], [])
    for question in questions:
        assert question["covers"], f"quiz {question['id']} names no item (**Covers:** \"...\")"
        assert question["has_answer"], f"quiz {question['id']} has no **Answer.**"
        assert any(normal(question["covers"]) in normal(item) for item in items), (
            f"quiz {question['id']} covers {question['covers']!r}, which no item of {path.name} says now")
    uncovered = [item for item in items if not any(normal(q["covers"]) in normal(item) for q in questions)]
    assert not uncovered, f"{path.name}: items without a quiz question: {uncovered}"


# ---- problem sets and grading ------------------------------------------------------------------
@pytest.fixture(scope="module")
def problem_sets():
    pytest.importorskip("nbgrader", reason="the grading extra: pip install -e '.[grading]' (make does it)")
    return script("problem_sets")


def test_problem_sets_have_visible_and_hidden_tests(problem_sets):
    assert problem_sets.names() == ["ps1", "ps2"]
    for name in problem_sets.names():
        cells = json.loads(problem_sets.source_of(name).read_text(encoding="utf-8"))["cells"]
        sources = ["".join(c["source"]) for c in cells]
        graded = problem_sets.graded_cells(name)
        assert sum(points for _, points, auto in graded if auto) >= 8
        assert any(not auto for _, _, auto in graded), f"{name} has no written answer"
        assert sum("### BEGIN HIDDEN TESTS" in s for s in sources) >= 3
        assert sum(s.startswith("# Sanity check") for s in sources) >= 3
        assert all(re.match(rf"{name}-", gid) for gid in problem_sets.cell_ids({"cells": cells}))


def answered(source: Path, target: Path, replace: dict[str, str] | None = None) -> Path:
    """A submission: the source notebook (every answer right), with some answer cells replaced."""
    notebook = json.loads(source.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if replace and gid in replace:
            cell["source"] = replace[gid]
    target.write_text(json.dumps(notebook), encoding="utf-8")
    return target


@pytest.mark.slow  # nbgrader executes every submission in a kernel: about half a minute
def test_grading_a_folder_of_submissions(problem_sets, tmp_path):
    source = problem_sets.source_of("ps1")
    folder = tmp_path / "submissions"
    folder.mkdir()
    answered(source, folder / "ada.ipynb")
    # min-dalle's cut of a long prompt: the sanity check passes, a hidden test does not
    wrong = ("def text_rows(tokens, count=64):\n    tokens = tokens[:count]\n"
             "    rows = torch.ones((2, count), dtype=torch.long)\n"
             "    rows[0, :2] = torch.tensor([tokens[0], 2])\n"
             "    rows[1, :len(tokens)] = torch.tensor(tokens)\n    return rows\n")
    answered(source, folder / "bob.ipynb", {"ps1-q1-answer": wrong})
    released = problem_sets.release(tmp_path / "release", ["ps1"])["ps1"]
    (folder / "cy.ipynb").write_bytes(released.read_bytes())  # handed in as handed out
    released_text = released.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in released_text and "BEGIN HIDDEN TESTS" not in released_text
    assert "pack_text_tokens" not in released_text and "# Sanity check" in released_text
    out = tmp_path / "grades.csv"
    assert problem_sets.main(["grade", str(folder), "--out", str(out)]) == 0
    import csv

    rows = {row["student"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert set(rows) == {"ada", "bob", "cy"}
    assert float(rows["ada"]["autograded"]) == float(rows["ada"]["autograded_max"]) == 10
    assert float(rows["bob"]["ps1-q1-sanity"]) == 1 and float(rows["bob"]["ps1-q1-hidden"]) == 0
    assert float(rows["bob"]["autograded"]) == 8
    assert float(rows["cy"]["autograded"]) == 0
    assert float(rows["ada"]["written_max"]) == 4


def test_grading_says_what_is_wrong_with_its_input(problem_sets, tmp_path, capsys):
    assert problem_sets.main(["grade", str(tmp_path / "missing")]) == 1
    assert "not a folder of submissions" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert problem_sets.main(["grade", str(tmp_path / "empty")]) == 1
    assert "no submissions" in capsys.readouterr().err
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "x.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert problem_sets.main(["grade", str(odd)]) == 1
    assert "cannot tell which problem set" in capsys.readouterr().err


# ---- the site (make html, make html-student) ---------------------------------------------------------
@pytest.fixture(scope="module")
def sites(tmp_path_factory, problem_sets):
    from tests.test_docs import fake_vendor

    pages, slides = script("export_html"), script("export_slides")
    root = tmp_path_factory.mktemp("sites")
    vendor = fake_vendor(slides, root / "vendor")
    lecturer, student = root / "site", root / "site-student"
    assert pages.main(["--out", str(lecturer), "--vendor", str(vendor), "--no-install"]) == 0
    assert pages.main(["--student", "--out", str(student), "--vendor", str(vendor), "--no-install"]) == 0
    return lecturer, student


def local_targets(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    refs = re.findall(r'(?:href|src)="([^"#]+)(?:#[^"]*)?"', text)
    return [r for r in refs if "://" not in r and not r.startswith(("//", "data:", "mailto:"))]


@pytest.mark.slow  # two whole sites: about a minute
def test_the_site_renders_its_index_and_exports_the_docs(sites):
    for site in sites:
        index = (site / "index.html").read_text(encoding="utf-8")
        assert "**" not in index and "<strong>course model</strong>" in index  # Markdown rendered
        assert "$p_c^s / p_u^{s-1}$" in index and "tex-svg.js" in index  # math left for MathJax, which is loaded
        assert "<code>text_tokens (2, 64)</code>" in index
        for page in ("syllabus", "references", "context", "faq", "shapes", "zh/README", "quiz-bank"):
            assert f'href="docs/{page}.html"' in index, page
            assert (site / "docs" / f"{page}.html").is_file(), page
        assert "中文" in (site / "docs" / "zh" / "README.html").read_text(encoding="utf-8")
        assert (site / "images" / "min-dalle" / "nuclear_broccoli.jpg").is_file()  # the notebooks' pictures
        assert 'src="images/min-dalle/' in (site / "00_overview.html").read_text(encoding="utf-8") or not any(
            "images/min-dalle/" in c.source for c in outline.read(outline.NOTEBOOKS / "00_overview.ipynb").cells)
        broken = [(page.relative_to(site).as_posix(), ref) for page in site.rglob("*.html")
                  for ref in local_targets(page)
                  if not ref.startswith("slides/") and not (page.parent / ref).exists()]
        assert not broken, f"links to nothing in {site.name}: {broken[:10]}"
        faq = (site / "docs" / "faq.html").read_text(encoding="utf-8")
        assert 'href="shapes.html"' in faq and ".md\"" not in faq


@pytest.mark.slow
def test_the_students_site_holds_no_answers(sites):
    lecturer, student = sites
    assert (lecturer / "solutions").is_dir() and not (student / "solutions").exists()
    for page in ("rubric", "teaching-guide"):
        assert (lecturer / "docs" / f"{page}.html").is_file() and not (student / "docs" / f"{page}.html").exists()
    assert "Answer." in (lecturer / "docs" / "quiz-bank.html").read_text(encoding="utf-8")
    student_quiz = (student / "docs" / "quiz-bank.html").read_text(encoding="utf-8")
    assert "Answer." not in student_quiz and "Covers:" in student_quiz
    for name in ("ps1", "ps2"):
        for suffix in (".ipynb", ".html"):
            text = (student / "problem-sets" / f"{name}{suffix}").read_text(encoding="utf-8")
            assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, (name, suffix)
            assert "dalle_core.sampling import top_k_mask" not in text
        assert "BEGIN HIDDEN TESTS" in (lecturer / "problem-sets" / "source" / f"{name}.html").read_text(
            encoding="utf-8")
    assert not (student / "problem-sets" / "source").exists()
    for page in student.rglob("*.html"):
        for ref in local_targets(page):
            assert "solutions/" not in ref and "rubric" not in ref and "teaching-guide" not in ref, (page, ref)
