"""Export the course to a static HTML site in site/, usable offline.

    .venv/bin/python scripts/export_html.py [--out site] [--student] [--vendor build/npm-vendor] [--no-install]
                                            [NAME ...]

What the site holds (the index links all of it):

- every lecture notebook as a page, as committed (outputs kept, nothing re-executed); the
  solutions beside them (lecturer's build only);
- the docs: every docs/**/*.md rendered to HTML (the syllabus, references, context, FAQ, shape
  cheat sheet, Chinese guide, ...); links between them and to the notebooks point at the pages;
- the problem sets: the students' notebooks (as nbgrader releases them) to download and read,
  and in the lecturer's build also their sources with solutions and hidden tests;
- the folders in FOLDERS, copied (notebooks/images/: the pictures the notebooks show).

Offline: MathJax is copied beside the pages into <out>/vendor/ from the npm package that
export_slides.py also uses (installed once into the cache folder `--vendor`); where npm cannot
provide it, the pages load MathJax from a CDN and a message says so. Interactive widgets
become a note (they need a kernel). The slides (`make slides`) live in <out>/slides/, which this
script leaves in place.

`--student` builds the students' site: no solutions, no answers, no hidden tests, no
lecturer-only pages, and no links to any of them.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import course_outline
import export_common as common
import problem_sets

DOCS = common.ROOT / "docs"
TEMPLATE_NAME = "html_template"
# pages for the lecturer only: answers and marking (the quiz bank has a student copy without answers)
LECTURER_PAGES = {"teaching-guide.md", "rubric.md"}
QUIZ_PAGE = "quiz-bank.md"
# the docs pages the index names under "Teaching" and "Reference", in this order; any other page is
# listed after them
TEACHING = ["syllabus.md", "references.md", "context.md", "rubric.md", QUIZ_PAGE, "teaching-guide.md"]
REFERENCE = ["faq.md", "shapes.md", "zh/README.md", "architecture.md", "classroom.md", "weights.md",
             "performance.md", "course-model.md"]


@dataclass(frozen=True)
class Folder:
    """A folder of the repository copied whole into the site, and the index's link to it (if any)."""

    source: str  # relative to the repository
    target: str  # relative to the site
    link: str | None = None  # the page the index links, relative to the site
    title: str = ""


FOLDERS = [
    Folder("notebooks/images", "images"),  # min-dalle's pictures, which the notebooks show
]


def summary_html(notebook: nbformat.NotebookNode) -> str:
    """The "What you will learn" bullets, rendered (Markdown and math)."""
    items = course_outline.learn_items(notebook)
    return common.render_markdown("\n".join(f"- {item}" for item in items)) if items else ""


def export_notebook(source: Path, target: Path, exporter: HTMLExporter, mathjax_js: str, student: bool) -> None:
    """One page; `mathjax_js` is MathJax's URL as seen from the page."""
    notebook = common.without_widgets(nbformat.read(source, as_version=4))
    if student:
        notebook = common.without_solution_links(notebook)
    resources = {"metadata": {"name": source.stem},
                 "dalle_html": {"mathjax_js": mathjax_js, "licence": common.LICENCE_FOOTER}}
    body, _ = exporter.from_notebook_node(notebook, resources=resources)
    body = re.sub(r'href="([^"#:]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")


# ---- docs pages -------------------------------------------------------------------------------
def doc_pages(student: bool) -> list[str]:
    """docs/**/*.md as paths relative to docs/, lecturer-only pages left out for students."""
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    return [p for p in pages if not (student and p in LECTURER_PAGES)]


def quiz_for_students(text: str) -> str:
    """The quiz bank without its answers: each "**Answer.**" paragraph up to the next heading goes."""
    text = re.sub(r"^\*\*Answer\.\*\*.*?(?=^#|\Z)", "", text, flags=re.MULTILINE | re.DOTALL)
    return text.replace("with answers for the lecturer", "(the answers are in the lecturer's copy)")


def doc_link_target(page: str, exported: set[str], notebooks: set[str], student: bool):
    """Where a relative link of docs/<page> points in the site (None: nowhere, keep the text)."""
    page_dir = (DOCS / page).parent

    def target_of(href: str) -> str | None:
        path = (page_dir / href).resolve()
        try:
            relative = path.relative_to(DOCS).as_posix()
        except ValueError:
            relative = None
        depth = "../" * (len(Path(page).parts) - 1)  # from site/docs/<page> up to site/docs/
        if relative in exported:
            return depth + relative[:-3] + ".html"
        if relative is not None and (DOCS / relative).is_file() and relative.startswith("images/"):
            return depth + relative
        try:
            in_repo = path.relative_to(common.ROOT).as_posix()
        except ValueError:
            return None
        if in_repo.startswith("notebooks/solutions/") and in_repo.endswith(".ipynb"):
            return None if student else f"{depth}../solutions/{Path(in_repo).stem}.html"
        if in_repo.startswith("notebooks/") and Path(in_repo).stem in notebooks:
            return f"{depth}../{Path(in_repo).stem}.html"
        for folder in FOLDERS:
            if in_repo.startswith(folder.source + "/") and path.exists():
                return f"{depth}../{folder.target}/{in_repo[len(folder.source) + 1:]}"
        return None  # code, data and anything else not in the site: the text stays, unlinked

    return target_of


def export_docs(out: Path, mathjax_js: str | None, student: bool, notebooks: set[str]) -> dict[str, str]:
    """docs/<page>.md -> <out>/docs/<page>.html; returns {page: title}."""
    exported = set(doc_pages(student))
    titles = {}
    for name in sorted(exported):
        text = (DOCS / name).read_text(encoding="utf-8")
        if student and name == QUIZ_PAGE:
            text = quiz_for_students(text)
        title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), name)
        body = common.render_markdown(text)
        body = common.rewrite_local_links(body, doc_link_target(name, exported, notebooks, student))
        depth = "../" * len(Path(name).parts)
        target = out / "docs" / (name[:-3] + ".html")
        target.parent.mkdir(parents=True, exist_ok=True)
        mathjax = None if mathjax_js is None else (mathjax_js if "://" in mathjax_js else depth + mathjax_js)
        target.write_text(common.page(title, body, mathjax, home=depth + "index.html"), encoding="utf-8")
        titles[name] = title
    copy_tree(DOCS / "images", out / "docs" / "images")
    return titles


# ---- the site ---------------------------------------------------------------------------------
def copy_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)


def index_page(notebooks: list[tuple[str, str, str, str | None]], docs: dict[str, str],
               sets: list[problem_sets.Exported], student: bool, mathjax_js: str) -> str:
    rows = []
    for href, title, summary, solution in notebooks:
        link = f' · <a href="{solution}">solutions</a>' if solution else ""
        rows.append(f'<li><a href="{href}"><b>{common.render_inline(title)}</b></a>{link}\n{summary}</li>')

    def doc_item(name: str) -> str:
        return f'<li><a href="docs/{name[:-3]}.html">{html.escape(docs[name])}</a></li>'

    teaching = [doc_item(n) for n in TEACHING if n in docs]
    teaching.insert(1, "<li><a href='slides/index.html'>Lecture decks and notebook slides</a>"
                       + ("" if student else " (after <code>make slides</code>)") + "</li>")
    for exported in sets:
        links = [f'<a href="{exported.page}">{html.escape(exported.title)}</a>',
                 f'<a href="{exported.notebook}">notebook</a>']
        if exported.source_page:
            links.append(f'<a href="{exported.source_page}">with solutions and hidden tests</a>')
        teaching.append(f"<li>{' · '.join(links)}</li>")
    reference = [doc_item(n) for n in REFERENCE if n in docs]
    reference += [doc_item(n) for n in sorted(docs) if n not in TEACHING and n not in REFERENCE]
    reference += [f'<li><a href="{f.link}">{html.escape(f.title)}</a></li>' for f in FOLDERS if f.link]
    body = (
        "<h1>DALL·E Mini from the inside</h1>\n"
        "<p>An annotated notebook course on <code>dalle_core</code>: every tensor of DALL·E Mini / Mega "
        "text-to-image inference, with the course model's numbers and DALL·E Mega's shapes.</p>\n"
        f"<h2>Notebooks</h2>\n<ol start='0'>\n{chr(10).join(rows)}\n</ol>\n"
        f"<h2>Teaching</h2>\n<ul>\n{chr(10).join(teaching)}\n</ul>\n"
        f"<h2>Reference</h2>\n<ul>\n{chr(10).join(reference)}\n</ul>\n"
    )
    return common.page("DALL·E Mini from the inside", body, mathjax_js, home=None)


def clean(out: Path) -> None:
    """Start clean, but keep the slides `make slides` wrote into <out>/slides/."""
    if out.exists():
        for child in out.iterdir():
            if child.name != "slides":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook file names in notebooks/ (default: every lecture notebook)")
    parser.add_argument("--out", default=str(common.ROOT / "site"), help="output folder (default: site/)")
    parser.add_argument("--student", action="store_true",
                        help="no solutions, answers or hidden tests, and no links to them")
    parser.add_argument("--vendor", default=str(common.VENDOR_CACHE),
                        help="cache folder for the npm packages (default: build/npm-vendor/)")
    parser.add_argument("--no-install", action="store_true", help="never run npm; use the cache or fall back to a CDN")
    args = parser.parse_args(argv)
    out = Path(args.out)
    sources = [common.NOTEBOOKS / name for name in args.names] or course_outline.lecture_notebooks()
    missing = [str(p) for p in sources if not p.is_file()]
    if missing or not sources:
        print(f"no such notebook: {', '.join(missing) or common.NOTEBOOKS}", file=sys.stderr)
        return 1
    clean(out)
    why = common.provide_vendor(Path(args.vendor), out, common.MATHJAX_FILES, install=not args.no_install)
    if why is not None:
        common.warn_cdn("MathJax", why, "html")
    mathjax = common.MATHJAX_LOCAL if why is None else common.MATHJAX_CDN
    exporter = HTMLExporter(extra_template_basedirs=[str(common.SCRIPTS)], template_name=TEMPLATE_NAME)
    entries = []
    for source in sources:
        export_notebook(source, out / f"{source.stem}.html", exporter, mathjax, args.student)
        notebook = course_outline.read(source)
        solution = common.NOTEBOOKS / "solutions" / source.name
        solution_href = None
        if solution.is_file() and not args.student:
            export_notebook(solution, out / "solutions" / f"{source.stem}.html", exporter,
                            "../" + mathjax if why is None else mathjax, student=False)
            solution_href = f"solutions/{source.stem}.html"
        entries.append((f"{source.stem}.html", course_outline.title(notebook, source.stem),
                        summary_html(notebook), solution_href))
        print(f"exported {source.name}" + (" + solutions" if solution_href else ""))
    docs = export_docs(out, mathjax, args.student, {p.stem for p in sources})
    print(f"exported {len(docs)} docs pages")
    sets = problem_sets.export_site(out / "problem-sets", exporter, mathjax, student=args.student)
    print(f"exported {len(sets)} problem sets" + ("" if args.student else " with their sources"))
    for folder in FOLDERS:
        copy_tree(common.ROOT / folder.source, out / folder.target)
    (out / "index.html").write_text(index_page(entries, docs, sets, args.student, mathjax), encoding="utf-8")
    kind = "student build, no solutions" if args.student else "with solutions"
    print(
        f"wrote {len(entries)} notebooks to {out}/index.html "
        f"({kind}; {'offline' if why is None else 'MathJax from a CDN'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
