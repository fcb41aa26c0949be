"""Export the course notebooks (and their solutions) to a static HTML site in site/, usable offline.

    .venv/bin/python scripts/export_html.py [--out site] [--student] [--vendor build/npm-vendor] [--no-install]
                                            [NAME ...]

The notebooks are exported as committed (with their outputs; they are not re-executed):
PNG plots are embedded in the pages, links between notebooks point at the HTML pages, and
site/index.html lists every notebook with its title and its "What you will learn" section.

Offline: the pages load no script or style sheet from the network. MathJax (for the
formulas) is copied beside the pages, into <out>/vendor/, from the npm package that
export_slides.py also uses (installed once into the cache folder `--vendor`); where npm
cannot provide it, the pages load MathJax from a CDN and a message says so. Interactive
widgets become a note (they need a kernel).

`--student` builds the site for students: no solution pages, no links to them.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_common import (
    MATHJAX_CDN,
    MATHJAX_FILES,
    MATHJAX_LOCAL,
    VENDOR_CACHE,
    provide_vendor,
    warn_cdn,
    without_solution_links,
    without_widgets,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TEMPLATE_DIR = Path(__file__).resolve().parent
TEMPLATE_NAME = "html_template"


def title_and_summary(notebook: nbformat.NotebookNode, fallback: str) -> tuple[str, str]:
    """The first '# ' heading and the bullet lines of 'What you will learn', if any."""
    first = next((c.source for c in notebook.cells if c.cell_type == "markdown"), "")
    match = re.search(r"^# (.+)$", first, re.MULTILINE)
    title = match.group(1).strip() if match else fallback
    section = re.search(
        r"^## What you will learn\s*\n(.*?)(?:^#|^```|\Z)", first, re.MULTILINE | re.DOTALL | re.IGNORECASE
    )
    bullets = re.findall(r"^- (.+)$", section.group(1), re.MULTILINE) if section else []
    return title, " ".join(bullets)


def export(
    source: Path, target: Path, exporter: HTMLExporter, mathjax_js: str, student: bool = False
) -> tuple[str, str]:
    """One page; `mathjax_js` is MathJax's URL as seen from the page."""
    notebook = without_widgets(nbformat.read(source, as_version=4))
    if student:
        notebook = without_solution_links(notebook)
    resources = {"metadata": {"name": source.stem}, "dalle_html": {"mathjax_js": mathjax_js}}
    body, _ = exporter.from_notebook_node(notebook, resources=resources)
    body = re.sub(r'href="([^"#:]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return title_and_summary(notebook, source.stem)


def index_page(entries: list[tuple[str, str, str, str | None]], student: bool = False) -> str:
    rows = []
    for href, title, summary, solution in entries:
        link = f' · <a href="{solution}">solutions</a>' if solution else ""
        rows.append(
            f'<li><a href="{href}"><b>{html.escape(title)}</b></a>{link}<br><small>{html.escape(summary)}</small></li>'
        )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>DALL·E Mini from the inside</title>\n"
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.4}li{margin:0.8em 0}</style>\n"
        "</head><body>\n<h1>DALL·E Mini from the inside</h1>\n"
        "<p>An annotated notebook course on <code>dalle_core</code>: every tensor of DALL·E Mini / Mega "
        "text-to-image inference, with the course model's numbers and DALL·E Mega's shapes.</p>\n"
        + (
            "<p>Slides of the lecture notebooks: <a href='slides/index.html'>slides/</a>.</p>\n"
            if student
            else "<p>Slides of the lecture notebooks: <a href='slides/index.html'>slides/</a> "
            "(after <code>make slides</code>).</p>\n"
        )
        + f"<ol start='0'>\n{chr(10).join(rows)}\n</ol>\n</body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook file names in notebooks/ (default: every lecture notebook)")
    parser.add_argument("--out", default=str(ROOT / "site"), help="output folder (default: site/)")
    parser.add_argument("--student", action="store_true", help="no solutions and no links to them")
    parser.add_argument(
        "--vendor", default=str(VENDOR_CACHE), help="cache folder for the npm packages (default: build/npm-vendor/)"
    )
    parser.add_argument("--no-install", action="store_true", help="never run npm; use the cache or fall back to a CDN")
    args = parser.parse_args(argv)
    out = Path(args.out)
    main_notebooks = [NOTEBOOKS / name for name in args.names] or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in main_notebooks if not p.is_file()]
    if missing or not main_notebooks:
        print(f"no such notebook: {', '.join(missing) or NOTEBOOKS}", file=sys.stderr)
        return 1
    if out.exists():  # start clean, but keep the slides `make slides` wrote into site/slides/
        for child in out.iterdir():
            if child.name != "slides":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    why = provide_vendor(Path(args.vendor), out, MATHJAX_FILES, install=not args.no_install)
    if why is not None:
        warn_cdn("MathJax", why, "html")
    mathjax = MATHJAX_LOCAL if why is None else MATHJAX_CDN
    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATE_DIR)], template_name=TEMPLATE_NAME)
    entries = []
    for source in main_notebooks:
        title, summary = export(source, out / f"{source.stem}.html", exporter, mathjax, args.student)
        solution = NOTEBOOKS / "solutions" / source.name
        solution_href = None
        if solution.is_file() and not args.student:
            export(
                solution,
                out / "solutions" / f"{source.stem}.html",
                exporter,
                "../" + mathjax if why is None else mathjax,
            )
            solution_href = f"solutions/{source.stem}.html"
        entries.append((f"{source.stem}.html", title, summary, solution_href))
        print(f"exported {source.name}" + (" + solutions" if solution_href else ""))
    (out / "index.html").write_text(index_page(entries, args.student), encoding="utf-8")
    kind = "student build, no solutions" if args.student else "with solutions"
    print(
        f"wrote {len(entries)} notebooks to {out}/index.html "
        f"({kind}; {'offline' if why is None else 'MathJax from a CDN'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
