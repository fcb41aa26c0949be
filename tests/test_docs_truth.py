"""One truth in the docs: a measured number is written from, or checked against, the one place that
measures it, and the Chinese guide quotes the notebooks as they are now.

- notebook time and memory: docs/data/notebook-measurements.json (scripts/measure_notebooks.py), quoted
  between markers in README.md, docs/teaching-guide.md, docs/classroom.md, docs/faq.md and docs/syllabus.md;
- the CPU speed of the real model: docs/performance.md's table (bench/run.py), quoted by docs/weights.md;
- the training time: the shipped model's metadata.json, quoted by docs/faq.md;
- docs/zh/README.md: the headings it quotes exist in the notebooks, and its translation of each
  notebook's "What you will learn" has as many items as the notebook's list.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "scripts"))
import course_outline  # noqa: E402
import measure_notebooks  # noqa: E402

ZH = DOCS / "zh" / "README.md"


# ---- notebook measurements ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def data() -> dict:
    return measure_notebooks.load()


def test_every_lecture_notebook_is_measured_and_nothing_else(data):
    stems = {p.stem for p in course_outline.lecture_notebooks()}
    rows = measure_notebooks.lecture_rows(data)
    assert set(rows) == stems, f"measured {sorted(rows)}, the notebooks are {sorted(stems)}"
    for name, row in rows.items():
        assert row["seconds"] > 0 and row["kernel_peak_mib"] > 0, name
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", row["date"]) and row["machine"], name
    assert data["server"]["server_rss_mib"] > 0 and data["baseline"]["imports_seconds"] > 0


def test_the_docs_quote_the_measurements_as_written(data):
    stale = measure_notebooks.stale_pages(data)
    assert not stale, f"{stale}: the measurement blocks differ from the data file; run {measure_notebooks.COMMAND}"
    for page in measure_notebooks.PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        assert measure_notebooks.BLOCK.search(text), f"{page} has no notebook-measurements block"
    guide = (ROOT / measure_notebooks.GUIDE).read_text(encoding="utf-8")
    assert "<!-- notebook-measurements:table -->" in guide


def test_a_stale_block_is_found(data, tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("x\n<!-- notebook-measurements:summary -->\nkernels stay under 0.5 GiB\n"
                    "<!-- /notebook-measurements -->\n", encoding="utf-8")
    monkeypatch.setattr(measure_notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(measure_notebooks, "PAGES", ["page.md"])
    assert measure_notebooks.stale_pages(data) == ["page.md"]
    assert measure_notebooks.render_all(data) == ["page.md"]
    assert "0.5 GiB" not in page.read_text(encoding="utf-8") and measure_notebooks.stale_pages(data) == []


SYLLABUS_RANGE = re.compile(r"top to bottom takes (\d+) to (\d+) s")
MEASURED_PAGES = ["README.md", "docs/teaching-guide.md", "docs/classroom.md", "docs/faq.md", "docs/syllabus.md",
                  "docs/zh/README.md"]


@pytest.mark.parametrize("page", MEASURED_PAGES)
def test_no_notebook_memory_or_time_outside_the_measured_blocks(page):
    """A sentence that states a notebook's memory or run time is written from the data file, never by hand."""
    text = measure_notebooks.BLOCK.sub("", (ROOT / page).read_text(encoding="utf-8"))
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    for sentence in re.split(r"(?<=[.。;；:])\s+|\n\n", text):
        if re.search(r"limit|guarantee", sentence):
            continue  # a configured quota, checked against the measurements in tests/test_recipes.py
        if SYLLABUS_RANGE.search(sentence):
            continue  # checked against the data file below
        about_a_notebook = re.search(r"kernel|内核|(each|every|a|one|per|open) notebook|notebooks take", sentence,
                                     re.IGNORECASE)
        if about_a_notebook and re.search(r"\d\s*(MiB|GiB|MB|GB)\b", sentence):
            pytest.fail(f"{page} states a notebook's memory by hand: {sentence.strip()[:200]!r}; "
                        "quote the measurements through a notebook-measurements block")
        timed = re.search(r"\d\s*(s|seconds|minutes|分钟|秒)\b", sentence) and "**Time:**" not in sentence
        if about_a_notebook and timed:
            pytest.fail(f"{page} states a notebook's run time by hand: {sentence.strip()[:200]!r}; "
                        "quote the measurements through a notebook-measurements block")


def test_the_syllabus_quotes_the_measured_range(data):
    text = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    match = SYLLABUS_RANGE.search(text)
    assert match, "docs/syllabus.md no longer states how long a notebook runs"
    seconds = [row["seconds"] for row in measure_notebooks.lecture_rows(data).values()]
    assert (int(match.group(1)), int(match.group(2))) == (round(min(seconds)), round(max(seconds)))


# ---- the real model's CPU speed: performance.md is the source -----------------------------------
def markdown_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|") and not re.match(r"\|[-:| ]+\|$", line.strip())]


def performance_cpu() -> dict[str, dict[str, str]]:
    """dtype -> dalle_core's one-image row of performance.md's CPU table."""
    text = (DOCS / "performance.md").read_text(encoding="utf-8")
    table = text.split("<!-- bench:table cpu -->")[1].split("<!-- /bench:table -->")[0]
    rows = markdown_rows(table)
    header = rows[0]
    found = {}
    for row in rows[1:]:
        record = dict(zip(header, row))
        if record.get("device") == "cpu" and record.get("program") == "dalle_core" and record.get("images") == "1":
            found[record["dtype"]] = record
    assert {"float32", "bfloat16"} <= set(found), found
    return found


def weights_cpu_section() -> str:
    text = (DOCS / "weights.md").read_text(encoding="utf-8")
    return text.split("## What to expect on CPU and GPU", 1)[1]


def test_weights_md_cpu_figures_are_performance_md_figures():
    measured = performance_cpu()
    section = weights_cpu_section()
    rows = [r for r in markdown_rows(section) if r and r[0] in measured]
    assert {r[0] for r in rows} == {"float32", "bfloat16"}, rows
    for dtype, ms, seconds, peak in rows:
        source = measured[dtype]
        assert (ms, seconds, peak) == (source["ms / token"], source["s / image"], source["peak MiB"]), (
            f"docs/weights.md says {dtype}: {ms} ms, {seconds} s, {peak} MiB; docs/performance.md measured "
            f"{source['ms / token']} ms, {source['s / image']} s, {source['peak MiB']} MiB")
    assert "safe choice" not in section


def test_weights_md_mega_estimate_follows_from_the_measurement():
    shapes = (DOCS / "shapes.md").read_text(encoding="utf-8")
    decoders = {m: int(re.search(rf"^\| {m} \| [\d,]+ \| ([\d,]+) \|", shapes, re.MULTILINE).group(1).replace(",", ""))
                for m in ("mega", "mini")}
    ratio = decoders["mega"] / decoders["mini"]
    measured = {d: float(r["ms / token"]) / 1000 for d, r in performance_cpu().items()}
    section = weights_cpu_section()
    stated = re.search(r"has ([\d.]+) times Mini's parameters, so about ([\d.]+) s per token in float32 and\s+"
                       r"([\d.]+) s in bfloat16 on the same 2-core machine, ([\d.]+) and ([\d.]+) minutes", section)
    assert stated, "docs/weights.md's Mega estimate changed wording; keep it checkable"
    expected = [ratio, ratio * measured["float32"], ratio * measured["bfloat16"],
                ratio * measured["float32"] * 256 / 60, ratio * measured["bfloat16"] * 256 / 60]
    for said, value in zip(stated.groups(), expected):
        decimals = len(said.split(".")[1]) if "." in said else 0
        assert float(said) == round(value, decimals), (said, value)


# ---- training time: the shipped model's metadata.json -------------------------------------------
def test_faq_training_time_is_the_shipped_runs():
    metadata = json.loads((ROOT / "dalle_core" / "assets" / "tiny" / "metadata.json").read_text(encoding="utf-8"))
    faq = (DOCS / "faq.md").read_text(encoding="utf-8")
    said = re.search(r"took\s+(\d+) minutes with (\d+) threads", faq)
    assert said, "docs/faq.md no longer says how long the shipped training run took"
    assert int(said.group(1)) == round(metadata["wall_time_s"]["total_s"] / 60)
    assert int(said.group(2)) == metadata["torch_threads"]
    assert f"train --threads {metadata['torch_threads']}" in faq
    assert "--replace-shipped" in faq and "build/course-model/" in faq


# ---- the Chinese guide --------------------------------------------------------------------------
NOTEBOOK_LINK = re.compile(r"\[(\d\d_\w+)\]\(\.\./\.\./notebooks/(\d\d_\w+)\.ipynb\)")
QUOTE = re.compile(r"“([^”]+)”")


def quoted_headings(text: str) -> list[tuple[str, str]]:
    """(notebook, quote) for each “...” with Latin letters, attributed to the notebook linked last before it."""
    events = sorted([(m.start(), "link", m.group(2)) for m in NOTEBOOK_LINK.finditer(text)]
                    + [(m.start(), "quote", m.group(1)) for m in QUOTE.finditer(text)])
    found, notebook = [], None
    for _, kind, value in events:
        if kind == "link":
            notebook = value
        elif re.search(r"[A-Za-z]", value):
            found.append((notebook, value))
    return found


def test_zh_guide_quotes_headings_that_exist():
    quotes = quoted_headings(ZH.read_text(encoding="utf-8"))
    assert len(quotes) >= 8, quotes
    for notebook, quote in quotes:
        # before any notebook link, a quote names a heading every notebook has
        notebooks = [notebook] if notebook else [p.stem for p in course_outline.lecture_notebooks()]
        for stem in notebooks:
            headings = course_outline.headings(course_outline.read(course_outline.notebook_path(stem)))
            assert quote in headings, (f"docs/zh/README.md quotes {quote!r} as a heading of {stem}, which has "
                                       f"no such heading (its headings: {headings})")


def zh_learn_sections() -> dict[str, list[str]]:
    text = ZH.read_text(encoding="utf-8")
    part = text.split("## 每个 notebook 你将学到什么", 1)[1].split("\n## ", 1)[0]
    sections = {}
    for chunk in part.split("\n### ")[1:]:
        heading, _, body = chunk.partition("\n")
        link = NOTEBOOK_LINK.search(heading)
        assert link, f"a section of docs/zh/README.md names no notebook: {heading!r}"
        sections[link.group(2)] = [line for line in body.splitlines() if line.startswith("- ")]
    return sections


def test_zh_guide_translates_every_what_you_will_learn():
    sections = zh_learn_sections()
    stems = [p.stem for p in course_outline.lecture_notebooks()]
    assert list(sections) == stems, f"docs/zh/README.md's sections {list(sections)}, the notebooks {stems}"
    drifted = {}
    for stem in stems:
        items = course_outline.learn_items(course_outline.read(course_outline.notebook_path(stem)))
        if len(items) != len(sections[stem]):
            drifted[stem] = (len(sections[stem]), len(items))
    assert not drifted, ("docs/zh/README.md's translation of \"What you will learn\" no longer matches these "
                         f"notebooks (translated items, items now): {drifted}; translate their current lists")


def test_zh_guide_gives_a_source_for_what_it_calls_measured():
    text = re.sub(r"```.*?```", "", ZH.read_text(encoding="utf-8"), flags=re.DOTALL)
    for paragraph in re.split(r"\n\s*\n|\n(?=- )", text):
        if "实测" in paragraph:
            assert re.search(r"\]\([^)]+\)|`[\w./-]+\.(md|json|py)`", paragraph), (
                f"docs/zh/README.md calls something measured (实测) without its source: {paragraph[:200]!r}")


def test_zh_guide_has_the_autodl_steps():
    text = ZH.read_text(encoding="utf-8")
    for needed in ("source /etc/network_turbo", "unset http_proxy https_proxy", "/root/autodl-tmp",
                   "--system-site-packages", "pip install -i https://pypi.tuna.tsinghua.edu.cn/simple -e '.[course]'",
                   "TORCH_INDEX=", "HF_ENDPOINT=https://hf-mirror.com", "PIP_CACHE_DIR=/root/autodl-tmp"):
        assert needed in text, needed


# ---- no development log in the docs -------------------------------------------------------------
DEVELOPMENT_LOG = [
    re.compile(r"\bissues? #?\d+", re.IGNORECASE),
    re.compile(r"\b(this|that|the last|a previous|an earlier) session\b", re.IGNORECASE),
    re.compile(r"\b(helper|coordinator)s?\b", re.IGNORECASE),
    re.compile(r"\b(was|were) (fixed|rewritten|renamed) (in|by|after)\b", re.IGNORECASE),
]
OTHER_PROJECTS = re.compile(r"tracker|github\.com/|\w/\w+#\d+")  # another project's issues may be cited


def development_log(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        for pattern in DEVELOPMENT_LOG:
            match = pattern.search(line)
            if match and not (pattern is DEVELOPMENT_LOG[0] and OTHER_PROJECTS.search(line)):
                found.append(line.strip()[:160])
    return found


def test_the_development_log_pattern_catches_and_spares():
    assert development_log("Every accuracy target of issue 12 holds")
    assert development_log("which shapes was not broken down this session")
    assert not development_log("as min-dalle's tracker reports for its files in issue 103")
    assert not development_log("documented for branches (jupyterhub/nbgitpuller#361)")


PAGES = sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md")) + ["README.md"]
@pytest.mark.parametrize("page", PAGES)
def test_no_development_log_in_the_docs(page):
    found = development_log((ROOT / page).read_text(encoding="utf-8"))
    assert not found, f"{page} reads like a development log (say what is, not how it came to be): {found}"
