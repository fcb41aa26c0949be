"""Export the course notebooks (and their solutions) to a static HTML site in site/.

    .venv/bin/python scripts/export_html.py [--out site]

The notebooks are exported as committed (with their outputs; they are not re-executed):
PNG plots are embedded in the pages, links between notebooks point at the HTML pages, and
site/index.html lists every notebook with its title and its "What you will learn" section.
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

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def title_and_summary(notebook: nbformat.NotebookNode, fallback: str) -> tuple[str, str]:
    """The first '# ' heading and the bullet lines of 'What you will learn', if any."""
    first = next((c.source for c in notebook.cells if c.cell_type == "markdown"), "")
    match = re.search(r"^# (.+)$", first, re.MULTILINE)
    title = match.group(1).strip() if match else fallback
    section = re.search(r"^## What you will learn\s*\n(.*?)(?:^#|^```|\Z)", first, re.MULTILINE | re.DOTALL | re.IGNORECASE)
    bullets = re.findall(r"^- (.+)$", section.group(1), re.MULTILINE) if section else []
    return title, " ".join(bullets)


def export(source: Path, target: Path, exporter: HTMLExporter) -> tuple[str, str]:
    notebook = nbformat.read(source, as_version=4)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": source.stem}})
    body = re.sub(r'href="([^"#:]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return title_and_summary(notebook, source.stem)


def index_page(entries: list[tuple[str, str, str, str | None]]) -> str:
    rows = []
    for href, title, summary, solution in entries:
        link = f' · <a href="{solution}">solutions</a>' if solution else ""
        rows.append(f'<li><a href="{href}"><b>{html.escape(title)}</b></a>{link}<br><small>{html.escape(summary)}</small></li>')
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>DALL·E Mini from the inside</title>\n"
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.4}li{margin:0.8em 0}</style>\n"
        "</head><body>\n<h1>DALL·E Mini from the inside</h1>\n"
        "<p>An annotated notebook course on <code>dalle_core</code>: every tensor of DALL·E Mini / Mega "
        "text-to-image inference, with the course model's numbers and DALL·E Mega's shapes.</p>\n"
        "<p>Slides of the lecture notebooks: <a href='slides/index.html'>slides/</a> (after <code>make slides</code>).</p>\n"
        f"<ol start='0'>\n{chr(10).join(rows)}\n</ol>\n</body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "site"), help="output folder (default: site/)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    main_notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not main_notebooks:
        print(f"no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 1
    if out.exists():  # start clean, but keep the slides `make slides` wrote into site/slides/
        for child in out.iterdir():
            if child.name != "slides":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    exporter = HTMLExporter(template_name="lab")
    entries = []
    for source in main_notebooks:
        title, summary = export(source, out / f"{source.stem}.html", exporter)
        solution = NOTEBOOKS / "solutions" / source.name
        solution_href = None
        if solution.is_file():
            export(solution, out / "solutions" / f"{source.stem}.html", exporter)
            solution_href = f"solutions/{source.stem}.html"
        entries.append((f"{source.stem}.html", title, summary, solution_href))
        print(f"exported {source.name}" + (" + solutions" if solution_href else ""))
    (out / "index.html").write_text(index_page(entries), encoding="utf-8")
    print(f"wrote {len(entries)} notebooks to {out}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
