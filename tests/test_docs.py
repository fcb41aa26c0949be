"""The documentation stays true to the code: the generated shape cheat sheet, links, slides."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # the output type of an ipywidgets view


@pytest.fixture(scope="module")
def cheatsheet(import_file):
    return import_file("scripts/shape_cheatsheet.py")


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
    from dalle_core.lab.shapes import trace_shapes

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
    from dalle_core.lab.shapes import trace_shapes

    mega = trace_shapes("mega", 4)
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|[^|\n]*\| `([^`]+)` \| `(\([0-9, ]*\))` \|", text, flags=re.MULTILINE)
    assert len(rows) >= 12, rows
    for name, shape in rows:
        assert shape == str(mega.shape(name)), f"docs/architecture.md says {name} {shape}, the code {mega.shape(name)}"


# ---- slides ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slides(import_file):
    return import_file("scripts/export_slides.py")


def test_slide_types_follow_headings(slides):
    import nbformat

    widget = {"output_type": "display_data", "metadata": {},
              "data": {WIDGET_VIEW: {"model_id": "x"}, "text/plain": "interactive(...)"}}
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\n## What you will learn\n\n- a\n\n```\n# not a heading\n```\nprose"),
        nbformat.v4.new_code_cell("import torch"),  # setup: no output
        nbformat.v4.new_markdown_cell("A long paragraph. " * 30 + "\n\n### Detail\n\nThe same, smaller:"),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")]),
        nbformat.v4.new_code_cell("slider", outputs=[nbformat.from_dict(widget)]),
    ])
    typed = slides.with_slide_types(notebook)
    kinds = [(c.cell_type, c.metadata["slideshow"]["slide_type"]) for c in typed.cells]
    assert kinds == [
        ("markdown", "slide"), ("markdown", "slide"), ("code", "notes"), ("markdown", "subslide"),
        ("markdown", "subslide"), ("code", "-"), ("code", "subslide"),
    ]
    assert "# not a heading" in typed.cells[1].source  # fenced code is never cut
    assert WIDGET_VIEW not in typed.cells[-1].outputs[0]["data"]
    assert "metadata" in notebook.cells[4].outputs[0] and WIDGET_VIEW in notebook.cells[4].outputs[0]["data"]


def fake_vendor(slides, root: Path) -> Path:
    """The npm cache layout with placeholder files: the export must not need the network."""
    for source in slides.VENDOR_FILES:
        path = root / "node_modules" / source
        if source.endswith((".js", "LICENSE")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("/* placeholder */\n", encoding="utf-8")
        else:
            path.mkdir(parents=True, exist_ok=True)
    notes = root / "node_modules" / "reveal.js" / "plugin" / "notes" / "notes.js"
    notes.write_text("/* placeholder */\n", encoding="utf-8")
    for name in ("reveal.js", "reveal.css", "theme/white.css"):
        path = root / "node_modules" / "reveal.js" / "dist" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("/* placeholder */\n", encoding="utf-8")
    return root


def section_counts(page: str) -> tuple[int, int]:
    """(slides, sub-slides): reveal.js nests a <section> per sub-slide inside one per slide."""
    depth = top = sub = 0
    for tag in re.findall(r"<section\b|</section>", page):
        if tag == "</section>":
            depth -= 1
            continue
        depth += 1
        top += depth == 1
        sub += depth == 2
    assert depth == 0, "unbalanced <section> tags"
    return top, sub


def local_references(page: str) -> list[str]:
    return re.findall(r'<script[^>]*\ssrc="([^"]+)"', page) + re.findall(r'<link[^>]*\shref="([^"]+)"', page)


def test_slides_export_offline(slides, tmp_path, capsys):
    out = tmp_path / "slides"
    names = ["00_overview.ipynb", "04_sampling.ipynb"]
    code = slides.main([*names, "--out", str(out), "--vendor", str(fake_vendor(slides, tmp_path / "vendor")),
                        "--no-install", "--no-decks"])
    assert code == 0
    assert "WARNING" not in capsys.readouterr().err
    pages = sorted(p.name for p in out.glob("*.slides.html"))
    assert pages == ["00_overview.slides.html", "04_sampling.slides.html"]
    for name in pages:
        page = (out / name).read_text(encoding="utf-8")
        top, sub = section_counts(page)
        assert top >= 4 and sub >= 10, (name, top, sub)  # several slides, each with sub-slides
        references = local_references(page)
        assert references, name
        for ref in references:  # every script and style sheet is a file next to the slides
            assert "://" not in ref and not ref.startswith("//"), (name, ref)
            assert (out / ref).is_file(), (name, ref)
        assert "/plugin/notes/notes.js" in page and 'vendor/reveal.js/dist/reveal.js' in page
    sampling = (out / "04_sampling.slides.html").read_text(encoding="utf-8")
    assert "$$" in sampling  # the formula is left for MathJax
    assert "interactive widget" in sampling and WIDGET_VIEW not in sampling
    assert 'href="../solutions/04_sampling.html"' in sampling  # the static site's page (make html)
    assert not re.search(r'href="[^"]*\.ipynb', sampling)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count("<li>") == 2 and "00_overview.slides.html" in index


def test_student_slides_link_to_no_solution(slides, tmp_path, capsys):
    out = tmp_path / "slides"
    code = slides.main(["04_sampling.ipynb", "--student", "--out", str(out),
                        "--vendor", str(fake_vendor(slides, tmp_path / "vendor")), "--no-install", "--no-decks"])
    assert code == 0
    page = (out / "04_sampling.slides.html").read_text(encoding="utf-8")
    assert "$$" in page and "solutions" not in page.lower()


def test_slides_fall_back_to_cdn_with_a_message(slides, tmp_path, capsys):
    out = tmp_path / "slides"
    code = slides.main(["00_overview.ipynb", "--out", str(out), "--vendor", str(tmp_path / "empty"), "--no-install",
                        "--no-decks"])
    assert code == 0
    assert "need a network" in capsys.readouterr().err
    page = (out / "00_overview.slides.html").read_text(encoding="utf-8")
    assert slides.CDN["reveal"] in page and slides.CDN["require_js"] in page
    assert not (out / "vendor").exists()


# ---- web pages (make html, make html-student) ----------------------------------------------
@pytest.fixture(scope="module")
def pages(import_file):
    return import_file("scripts/export_html.py")


def remote_references(page: str) -> list[str]:
    """Every script, style sheet, import or font a page would fetch from another host."""
    tags = local_references(page) + re.findall(r"@import\s+(?:url\()?['\"]?([^'\")\s;]+)", page)
    tags += re.findall(r"""\bimport\s*\(\s*["']([^"']+)""", page)  # dynamic ES module imports
    return [ref for ref in tags if "://" in ref or ref.startswith("//")]


@pytest.mark.slow  # the whole site, problem sets included (nbgrader): about a minute
def test_html_export_is_offline_and_the_student_build_has_no_solutions(pages, slides, tmp_path):
    vendor = fake_vendor(slides, tmp_path / "vendor")
    names = ["00_overview.ipynb", "04_sampling.ipynb"]
    out, student = tmp_path / "site", tmp_path / "site-student"
    assert pages.main([*names, "--out", str(out), "--vendor", str(vendor), "--no-install"]) == 0
    assert pages.main([*names, "--student", "--out", str(student), "--vendor", str(vendor), "--no-install"]) == 0
    built = sorted(out.rglob("*.html"))
    assert [p.relative_to(out).as_posix() for p in built if p.parent in (out, out / "solutions")] == [
        "00_overview.html", "04_sampling.html", "index.html",
        "solutions/00_overview.html", "solutions/04_sampling.html"]
    for path in built + sorted(student.rglob("*.html")):
        page = path.read_text(encoding="utf-8")
        assert remote_references(page) == [], path
        for ref in local_references(page):
            assert (path.parent / ref).is_file(), (path, ref)
    sampling = (out / "04_sampling.html").read_text(encoding="utf-8")
    assert "$$" in sampling and 'src="vendor/mathjax/tex-svg.js"' in sampling  # MathJax beside the page
    assert 'src="../vendor/mathjax/tex-svg.js"' in (out / "solutions" / "04_sampling.html").read_text(encoding="utf-8")
    assert "interactive widget" in sampling and WIDGET_VIEW not in sampling
    assert 'href="solutions/04_sampling.html"' in sampling and "solutions/" in (out / "index.html").read_text()
    assert not (student / "solutions").exists()
    for path in student.glob("*.html"):
        assert "solutions" not in path.read_text(encoding="utf-8").lower(), path
    assert "$$" in (student / "04_sampling.html").read_text(encoding="utf-8")


def test_html_template_loads_nothing_remote():
    """The template itself, whatever a notebook holds: no require.js, widget manager or mermaid from a CDN."""
    template = (ROOT / "scripts" / "html_template" / "index.html.j2").read_text(encoding="utf-8")
    for block in ("html_head_js_requirejs", "jupyter_widgets", "html_head_js_mermaidjs", "html_head_js_mathjax"):
        assert f"block {block}" in template
    assert "://" not in template


def test_solution_links_removed_for_students(import_file):
    import nbformat

    common = import_file("scripts/export_common.py")
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "## Exercises\n\nEach has a check cell. "
                "Solutions: [solutions/04_sampling.ipynb](solutions/04_sampling.ipynb).\n"
                "**Solutions:** [one](solutions/a.ipynb), [two](solutions/b.ipynb)\n"
                "Compare with [the worked answer](./solutions/04_sampling.ipynb#part-2) later."
            )
        ]
    )
    student = common.without_solution_links(notebook)
    assert student.cells[0].source == "## Exercises\n\nEach has a check cell.\n\nCompare with the worked answer later."
    assert "solutions/" in notebook.cells[0].source  # the original is untouched


# ---- pages, links, classroom ------------------------------------------------------------
@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")) + ["../README.md"])
def test_relative_links_resolve(page):
    path = (DOCS / page).resolve()
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # links inside code blocks are examples
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file, _, anchor = target.partition("#")
        assert (path.parent / file).exists(), f"{page} links to {target}, which does not exist"
        if anchor and file.endswith(".md"):
            headings = re.findall(r"^#+ (.+)$", (path.parent / file).read_text(encoding="utf-8"), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{page} links to {target}: no such heading in {file}"


def test_readme_links_the_weights_guide_and_the_chinese_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/weights.md)" in readme and "](docs/zh/README.md)" in readme


def test_chinese_page_points_at_every_notebook_and_the_weights_commands():
    page = (DOCS / "zh" / "README.md").read_text(encoding="utf-8")
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"(../../notebooks/{notebook.name})" in page, f"docs/zh/README.md does not link {notebook.name}"
    for text in (
        "make lab",
        "make test",
        "HF_ENDPOINT=https://hf-mirror.com",
        "python -m dalle_core verify",
        "python -m dalle_core convert",
        "--dtype float16",
    ):
        assert text in page, text


def test_teaching_guide_covers_every_notebook():
    guide = (DOCS / "teaching-guide.md").read_text(encoding="utf-8")
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert notebook.stem in guide, f"docs/teaching-guide.md does not mention {notebook.name}"


# ---- Binder / repo2docker ----------------------------------------------------------------
def points_into_repository(line: str) -> bool:
    """repo2docker's rule for a pip line that needs the repository (`-e .`, `-r file`, `./pkg`)."""
    line = line.split("#", 1)[0].strip()
    if line.startswith(("-r", "-c", "--requirement", "--constraint")):
        return True
    if line.startswith("--") and "=" in line:
        line = line.split("=", 1)[1]
    elif line.startswith("-"):
        parts = line.split(None, 1)
        if len(parts) < 2:
            return False
        line = parts[1]
    path = line.split("://", 1)[1] if "://" in line else line
    return "file://" in line or path.startswith(".")


def test_environment_yml_follows_repo2docker_conventions():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    yaml = pytest.importorskip("yaml")  # PyYAML, which JupyterLab's server depends on

    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), (
        "a binder/ folder would make repo2docker ignore the root environment.yml"
    )
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert any(re.fullmatch(r"python\s*=+\s*3\.\d+", d) for d in conda), "repo2docker reads python=X.Y"
    assert "pip" in conda
    # a local requirement makes repo2docker install the environment after copying the
    # repository, which `-e .` needs; it is also what installs dalle_core at all
    assert "-e ." in pip and any(points_into_repository(line) for line in pip)
    assert not points_into_repository("--extra-index-url https://download.pytorch.org/whl/cpu")
    assert points_into_repository("-e .") and not points_into_repository("torch>=2.1")
    names = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in conda + pip if not d.startswith("-")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    needed |= {"jupyterlab", "ipykernel", "ipywidgets", "nbgitpuller"}
    assert needed <= names, f"environment.yml lacks {sorted(needed - names)}"


def test_environment_yml_pins_the_versions_of_the_outputs():
    """torch, numpy and JupyterLab as installed where the committed outputs were made."""
    yaml = pytest.importorskip("yaml")
    from importlib.metadata import version

    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    constraint = re.search(r"^torch==(\S+)", (ROOT / "constraints.txt").read_text(), re.MULTILINE)
    assert f"torch=={constraint.group(1)}" in pip  # tests/test_make.py: the pin lives in constraints.txt
    assert f"numpy={version('numpy').split('.')[0]}" in conda
    assert f"jupyterlab={version('jupyterlab').split('.')[0]}" in conda


def classroom_blocks(language: str) -> list[str]:
    text = (DOCS / "classroom.md").read_text(encoding="utf-8")
    return re.findall(rf"^\s*```{language}\n(.*?)^\s*```", text, re.MULTILINE | re.DOTALL)


def test_zero_to_jupyterhub_recipe_keeps_work_and_hides_solutions():
    yaml = pytest.importorskip("yaml")

    configs = [yaml.safe_load(block) for block in classroom_blocks("yaml")]
    singleuser = next(c["singleuser"] for c in configs if isinstance(c, dict) and "singleuser" in c)
    home = singleuser["storage"]["homeMountPath"]
    assert home == "/home/jovyan" and singleuser["storage"]["type"] != "none"  # persistent, per student
    assert singleuser["notebookDir"].startswith(home)
    hook = " ".join(singleuser["lifecycleHooks"]["postStart"]["exec"]["command"])
    assert f"{home}/" in hook and "-n" in hook.split()  # copies into the home, never over a student's file
    folder = singleuser["defaultUrl"].split("/lab/tree/", 1)[1].split("/notebooks/")[0]
    assert f"{home}/{folder}" in hook
    build = next(b for b in classroom_blocks("bash") if "repo2docker" in b)
    assert re.search(r"rm -r \S*notebooks/solutions", build), "the student image must be built without solutions"
    assert build.index("notebooks/solutions") < build.index("jupyter-repo2docker")


def test_readme_binder_badge_opens_the_first_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\(https://mybinder\.org/v2/gh/([^/)]+)/([^/)]+)/HEAD\?labpath=([^)]+)\)", readme)
    assert links, "no Binder badge in README.md"
    for owner, repo, labpath in links:
        assert labpath == "notebooks%2F00_overview.ipynb"
        assert (ROOT / labpath.replace("%2F", "/")).is_file()
        if (owner, repo) == ("OWNER", "REPO"):  # the placeholder must be explained
            assert "OWNER/REPO" in (DOCS / "classroom.md").read_text(encoding="utf-8")
