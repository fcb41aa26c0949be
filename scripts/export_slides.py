"""The slides in site/slides/, usable offline: the lecture decks, and every lecture notebook as a slide show.

    .venv/bin/python scripts/export_slides.py [--out site/slides] [--vendor build/npm-vendor]
                                              [--no-install] [--no-decks] [NAME ...]

The lecture decks (slides/decks/*.md, one per lecture, written for projection) are rendered
by decks.py, with the course's figures taken from the notebooks' stored outputs; they come
first in the index. The notebook slide shows are the secondary output: the notebooks are
exported as committed (outputs included, nothing re-executed, the files in notebooks/
untouched). Slide types are set on a copy at export time, so the
notebooks need no slideshow metadata:

- a Markdown cell is cut at its headings; a part that starts with a `#` or `##` heading
  opens a new slide (left/right), a part with a `###` heading or no heading a sub-slide
  (up/down; the space bar walks through everything in order);
- every code cell is a sub-slide of its own, its output beneath it, except that a code
  cell right after a short Markdown part (an introduction such as "The same for the
  course model:") joins that part's slide;
- the setup cell (the first code cell, when it prints nothing) goes to the speaker
  notes (press `s`): it is the same in every notebook;
- a widget output (04's slider) needs a live kernel, so it becomes a note saying so.

Slides taller than the screen scroll. reveal.js, require.js and MathJax are copied next
to the slides from npm packages installed into a cache folder (`--vendor`, default
build/npm-vendor, shared with export_html.py; `npm install` runs there once if the packages
are missing). If that is impossible (no npm, no registry), the slides are still written but
load those scripts from public CDNs, and a message says so.

`--student` leaves out every link to the solutions (see export_common.without_solution_links).
"""
from __future__ import annotations

import argparse
import copy
import html
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert import SlidesExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decks
import export_common as common

TEMPLATE_NAME = "slides_template"

# what is copied from the npm packages into <out>/vendor/ (folders whole)
VENDOR_FILES = {
    "reveal.js/dist": "reveal.js/dist",
    "reveal.js/plugin/notes": "reveal.js/plugin/notes",
    "reveal.js/LICENSE": "reveal.js/LICENSE",
    "requirejs/require.js": "require.js",
    **common.MATHJAX_FILES,
}
# the fallback: the same npm packages as served by jsDelivr's npm mirror
CDN = {
    "reveal": f"https://cdn.jsdelivr.net/npm/reveal.js@{common.NPM_PACKAGES['reveal.js']}",
    "require_js": f"https://cdn.jsdelivr.net/npm/requirejs@{common.NPM_PACKAGES['requirejs']}/require.js",
    "mathjax_js": common.MATHJAX_CDN,
}
LOCAL = {"reveal": "vendor/reveal.js", "require_js": "vendor/require.js", "mathjax_js": common.MATHJAX_LOCAL}
HEADING = re.compile(r"^(#{1,6})\s")
FENCE = re.compile(r"^\s*(```|~~~)")
SHORT_INTRO = 300  # characters: a Markdown part this short shares its slide with the next code cell


# ---- slide types ---------------------------------------------------------------------
def split_markdown(source: str) -> list[str]:
    """Cut Markdown before every heading line that is not inside a fenced code block."""
    parts: list[list[str]] = [[]]
    in_fence = False
    for line in source.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and HEADING.match(line) and any(text.strip() for text in parts[-1]):
            parts.append([])
        parts[-1].append(line)
    return ["\n".join(lines).strip("\n") for lines in parts if any(text.strip() for text in lines)]


def markdown_slide_type(part: str) -> str:
    match = HEADING.match(part)
    if match and len(match.group(1)) <= 2:
        return "slide"
    return "subslide"


def with_slide_types(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `notebook` with one slide type per cell (see the module docstring)."""
    notebook = copy.deepcopy(notebook)
    notebook.metadata.pop("widgets", None)
    cells = []
    first_code = True
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for part in split_markdown(cell.source):
                new = nbformat.v4.new_markdown_cell(part)
                new.metadata["slideshow"] = {"slide_type": markdown_slide_type(part)}
                cells.append(new)
            continue
        cell = copy.deepcopy(cell)
        if cell.cell_type == "code":
            setup = first_code and not cell.get("outputs")
            first_code = False
            previous = cells[-1] if cells else None
            joins = (previous is not None and previous.cell_type == "markdown"
                     and len(previous.source) <= SHORT_INTRO)
            slide_type = "notes" if setup else ("-" if joins else "subslide")
            common.widget_note(cell)
        else:
            slide_type = "skip"  # raw cells
        cell.metadata["slideshow"] = {"slide_type": slide_type}
        cells.append(cell)
    notebook.cells = cells
    return notebook


# ---- reveal.js, require.js and MathJax, offline ----------------------------------------
def script_urls(vendor: Path | None, out: Path, install: bool) -> tuple[dict[str, str], bool]:
    """Local paths (and the files copied) when possible, else CDN URLs; True if local."""
    why = common.provide_vendor(vendor, out, VENDOR_FILES, install)
    if why is None:
        return dict(LOCAL), True
    common.warn_cdn("reveal.js, require.js and MathJax", why, "slides")
    return dict(CDN), False


# ---- export ------------------------------------------------------------------------------
def title_of(notebook: nbformat.NotebookNode, fallback: str) -> str:
    first = next((c.source for c in notebook.cells if c.cell_type == "markdown"), "")
    match = re.search(r"^# (.+)$", first, re.MULTILINE)
    return match.group(1).strip() if match else fallback


def make_exporter(urls: dict[str, str]) -> SlidesExporter:
    exporter = SlidesExporter(
        extra_template_basedirs=[str(common.SCRIPTS)],
        template_name=TEMPLATE_NAME,
    )
    exporter.reveal_url_prefix = urls["reveal"]
    exporter.reveal_theme = "white"
    exporter.reveal_transition = "none"  # projected: no motion between slides
    exporter.reveal_number = "c/t"
    exporter.reveal_width = "1280"
    exporter.reveal_height = "800"
    return exporter


def link_target(match: re.Match) -> str:
    """A link to a notebook: to its slides if it is a lecture notebook, else to its page of the
    static site (`make html` writes site/, the slides live in site/slides/)."""
    path, anchor = match.group(1), match.group(2) or ""
    if "/" not in path:
        return f'href="{path}.slides.html{anchor}"'
    return f'href="../{path}.html{anchor}"'


def export(
    source: Path, out: Path, exporter: SlidesExporter, urls: dict[str, str], student: bool = False
) -> tuple[str, str, int]:
    notebook = nbformat.read(source, as_version=4)
    if student:
        notebook = common.without_solution_links(notebook)
    resources = {"metadata": {"name": source.stem}, "dalle_slides": urls}
    body, _ = exporter.from_notebook_node(with_slide_types(notebook), resources=resources)
    body = re.sub(r'href="(?:\./)?([^"#:]+)\.ipynb(#[^"]*)?"', link_target, body)
    target = out / f"{source.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target.name, title_of(notebook, source.stem), slide_count(body)


def slide_count(page: str) -> int:
    """Top-level <section>s: the slides (each holds its sub-slides as nested sections)."""
    depth = count = 0
    for tag in re.findall(r"<section\b|</section>", page):
        depth += -1 if tag == "</section>" else 1
        count += tag != "</section>" and depth == 1
    return count


def index_page(entries: list[tuple[str, str, int]], lectures: list[tuple[str, str, int]]) -> str:
    def rows(items: list[tuple[str, str, int]]) -> str:
        return "\n".join(f'<li><a href="{href}">{html.escape(title)}</a> <small>({count} slides)</small></li>'
                         for href, title, count in items)

    decks_part = (
        "<h2>Lecture decks</h2>\n<p>One deck per lecture of the <a href='../docs/syllabus.html'>syllabus</a>, "
        "written for projection; <kbd>s</kbd> opens the speaker notes.</p>\n"
        f"<ol>\n{rows(lectures)}\n</ol>\n" if lectures else ""
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>DALL·E Mini from the inside: slides</title>\n"
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.5}</style>\n"
        "</head><body>\n<h1>DALL·E Mini from the inside: slides</h1>\n"
        "<p><a href='../index.html'>The course as web pages</a> (<code>make html</code>).</p>\n"
        f"{decks_part}<h2>The notebooks as slides</h2>\n"
        "<p>One slide show per lecture notebook, cut at its headings. Space or the arrow keys move on, "
        "<kbd>s</kbd> opens the speaker view (with the setup code), <kbd>Esc</kbd> the overview. "
        "Long cells scroll.</p>\n"
        f"<ol start='0'>\n{rows(entries)}\n</ol>\n</body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook file names in notebooks/ (default: every lecture notebook)")
    parser.add_argument("--out", default=str(common.ROOT / "site" / "slides"),
                        help="output folder (default: site/slides/)")
    parser.add_argument("--vendor", default=str(common.VENDOR_CACHE),
                        help="cache folder for the npm packages (default: build/npm-vendor/)")
    parser.add_argument("--no-install", action="store_true", help="never run npm; use the cache or fall back to CDNs")
    parser.add_argument("--student", action="store_true", help="no links to the solutions")
    parser.add_argument("--no-decks", action="store_true", help="only the notebook slide shows")
    args = parser.parse_args(argv)
    sources = [common.NOTEBOOKS / name for name in args.names] or sorted(common.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in sources if not p.is_file()]
    if missing or not sources:
        print(f"no such notebook: {', '.join(missing) or common.NOTEBOOKS}", file=sys.stderr)
        return 1
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    urls, local = script_urls(Path(args.vendor), out, install=not args.no_install)
    lectures = []
    if not args.no_decks:
        try:
            built = decks.build(out, urls)
        except (KeyError, ValueError) as error:
            print(f"error: a lecture deck cannot be built: {error}", file=sys.stderr)
            return 1
        for deck, href in built:
            lectures.append((href, deck.title, len(deck.slides)))
            print(f"built deck {deck.name}: {len(deck.slides)} slides, figures: {', '.join(deck.figures()) or 'none'}")
    exporter = make_exporter(urls)
    entries = []
    for source in sources:
        entry = export(source, out, exporter, urls, student=args.student)
        entries.append(entry)
        print(f"exported {source.name}: {entry[2]} slides")
    (out / "index.html").write_text(index_page(entries, lectures), encoding="utf-8")
    where = "offline" if local else "needs a network: CDN scripts"
    print(f"wrote {len(entries)} slide shows to {out}/index.html ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
