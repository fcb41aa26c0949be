"""What the exports (export_html.py: the site, export_slides.py: slides and lecture decks) share,
defined once: the repository's folders, scripts from npm copied beside the pages so that they
work offline, Markdown rendered to HTML (math left for MathJax, GitHub's heading anchors),
interactive widgets turned into a note, and the student build without links to the solutions.

The npm packages are installed once into a cache folder (default build/npm-vendor/) and the
files a page needs are copied from there into <out>/vendor/. Where that is impossible (no npm,
no registry) the caller falls back to public CDNs and says so.
"""
from __future__ import annotations

import copy
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SCRIPTS = ROOT / "scripts"  # also where the nbconvert templates live (html_template/, slides_template/)
VENDOR_CACHE = ROOT / "build" / "npm-vendor"

# npm packages the pages load, pinned: the templates are written for reveal.js 4 and MathJax 3
NPM_PACKAGES = {"reveal.js": "4.6.1", "requirejs": "2.3.8", "mathjax": "3.2.2"}
# what is copied from the npm packages into <out>/vendor/ (folders whole): MathJax for every page
MATHJAX_FILES = {
    "mathjax/es5/tex-svg.js": "mathjax/tex-svg.js",  # TeX in, SVG out, fonts included: one file
    "mathjax/LICENSE": "mathjax/LICENSE",
}
MATHJAX_LOCAL = "vendor/mathjax/tex-svg.js"  # relative to <out>
MATHJAX_CDN = f"https://cdn.jsdelivr.net/npm/mathjax@{NPM_PACKAGES['mathjax']}/es5/tex-svg.js"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# a link into notebooks/solutions/, as Markdown: [text](solutions/04_sampling.ipynb)
SOLUTION_LINK = re.compile(r"\[([^\]]*)\]\((?:\./)?solutions/[^)]*\)")
# "Solutions: [solutions/04_sampling.ipynb](solutions/04_sampling.ipynb)." wherever it stands in a paragraph
SOLUTION_SENTENCE = re.compile(
    r"[ \t]*\**Solutions?\**[ \t]*:\**[ \t]*(?:\[[^\]]*\]\((?:\./)?solutions/[^)]*\)[ \t,;]*(?:and[ \t]+)?)+\.?"
)


# ---- scripts from npm, offline ------------------------------------------------------------
def vendor_ready(vendor: Path, files: dict[str, str]) -> bool:
    modules = vendor / "node_modules"
    return all((modules / source).exists() for source in files)


def npm_install(vendor: Path, files: dict[str, str]) -> str | None:
    """Install the pinned packages into `vendor`; None on success, else why not."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    vendor.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}@{version}" for name, version in NPM_PACKAGES.items()]
    print(f"installing {', '.join(specs)} into {vendor} (once)")
    try:
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(vendor), *specs],
            capture_output=True, text=True, timeout=300,
        )
    except subprocess.TimeoutExpired:
        return "npm install took more than 5 minutes"
    if result.returncode != 0:
        return "npm install failed: " + (result.stderr.strip().splitlines() or ["(no message)"])[-1]
    return None if vendor_ready(vendor, files) else "npm install finished but the expected files are missing"


def copy_vendor(vendor: Path, out: Path, files: dict[str, str]) -> None:
    for source, target in files.items():
        src, dst = vendor / "node_modules" / source, out / "vendor" / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def provide_vendor(vendor: Path | None, out: Path, files: dict[str, str], install: bool) -> str | None:
    """Copy `files` from the npm cache into <out>/vendor/ (installing them first if allowed):
    None when done, else why not (the caller then falls back to CDNs and warns)."""
    why = "no vendor folder was given" if vendor is None else None
    if vendor is not None and not vendor_ready(vendor, files):
        why = npm_install(vendor, files) if install else f"{vendor} lacks the npm packages and --no-install was given"
    if why is None:
        copy_vendor(vendor, out, files)
    return why


def warn_cdn(what: str, why: str, make_target: str) -> None:
    print(
        f"WARNING: {what} could not be provided locally ({why}).\n"
        f"         The pages were written, but they load {what} from public CDNs\n"
        f"         and need a network connection when shown. Run `make {make_target}` once where\n"
        "         npm can reach its registry to make them work offline.",
        file=sys.stderr,
    )


# ---- notebooks as exported -----------------------------------------------------------------
def widget_note(cell: nbformat.NotebookNode) -> None:
    """Replace widget views (they need a kernel) by a line that says where to use them."""
    for output in cell.get("outputs", []):
        if output.get("output_type") in ("display_data", "execute_result") and WIDGET_VIEW in output.get("data", {}):
            output["data"] = {"text/html": "<p><em>An interactive widget: open this notebook in "
                                           "JupyterLab and run the cell to use it.</em></p>"}


def without_widgets(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy whose widget outputs are notes and which loads no widget manager."""
    notebook = copy.deepcopy(notebook)
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        widget_note(cell)
    return notebook


def without_solution_links(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy for students: a sentence "Solutions: [...](solutions/...)." is dropped, any other
    link into solutions/ keeps its text and loses its target."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = SOLUTION_LINK.sub(r"\1", SOLUTION_SENTENCE.sub("", cell.source))
    return notebook


# ---- Markdown pages ------------------------------------------------------------------------
HEADING_TAG = re.compile(r'<h([1-6]) id="[^"]*">(.*?)<a class="anchor-link" href="#[^"]*">&#182;</a></h\1>', re.DOTALL)
LOCAL_HREF = re.compile(r'(<a\s[^>]*?href=")([^"#:]+)(#[^"]*)?("[^>]*>)(.*?)(</a>)', re.DOTALL)


def slug(text: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", html.unescape(text)).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def render_markdown(text: str) -> str:
    """Markdown to HTML as nbconvert renders a notebook's Markdown (tables, highlighted code; $...$ and
    $$...$$ left for MathJax), with GitHub's heading anchors so that links such as faq.md#why-... hold."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    body = markdown2html_mistune(text)
    return HEADING_TAG.sub(lambda m: f'<h{m.group(1)} id="{slug(m.group(2))}">{m.group(2)}</h{m.group(1)}>', body)


def render_inline(text: str) -> str:
    """One line of Markdown (a title with `code` or *emphasis*) as inline HTML."""
    body = render_markdown(text).strip()
    return body[3:-4] if body.startswith("<p>") and body.endswith("</p>") else body


def rewrite_local_links(body: str, target_of) -> str:
    """Every relative link: `target_of(path)` gives its new target, or None to keep the text and drop the link."""
    def replace(match: re.Match) -> str:
        start, path, anchor, end, text, close = match.groups()
        new = target_of(path)
        if new is None:
            return text
        return f"{start}{new}{anchor or ''}{end}{text}{close}"

    return LOCAL_HREF.sub(replace, body)


# every page of the site ends with the licences (LICENSE, LICENSE-docs) and min-dalle's notice
LICENCE_FOOTER = (
    "Code: MIT licence. Notebooks, prose and figures: "
    '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>, '
    "“DALL·E Mini from the inside”. "
    "Pictures drawn by min-dalle: min-dalle, © 2022 Brett Kuprel, MIT licence."
)


def page(title: str, body: str, mathjax_js: str | None, css: str = "", home: str | None = "index.html") -> str:
    """A whole HTML page around `body`: the course's plain style, MathJax when `mathjax_js` is given."""
    mathjax = "" if mathjax_js is None else (
        "<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], processEscapes: true}, "
        "svg: {fontCache: 'global'}};</script>\n"
        f'<script src="{html.escape(mathjax_js)}" async></script>\n'
    )
    nav = f'<p class="home"><a href="{home}">DALL·E Mini from the inside</a></p>\n' if home else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n{mathjax}<style>{PAGE_CSS}{css}</style>\n</head><body>\n"
        f'{nav}{body}\n<footer class="licence">{LICENCE_FOOTER}</footer>\n</body></html>\n'
    )


PAGE_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.5}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:0.2em 0.5em;vertical-align:top}"
    "pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}code{background:#f6f6f6}"
    "img{max-width:100%}li{margin:0.3em 0}.home{font-size:0.9em}blockquote{border-left:4px solid #ddd;"
    "margin-left:0;padding-left:1em;color:#333}.licence{margin-top:3em;font-size:0.85em;color:#555}"
)


# ---- `make vendor`: the npm packages, once ---------------------------------------------------------
NEEDED = {"reveal.js/dist/reveal.js": "", "reveal.js/plugin/notes/notes.js": "", "requirejs/require.js": "",
          **MATHJAX_FILES}


def main() -> int:
    """Install the pinned npm packages into the cache folder unless they are there (no network after)."""
    if vendor_ready(VENDOR_CACHE, NEEDED):
        print(f"{VENDOR_CACHE}: reveal.js, require.js and MathJax are there")
        return 0
    why = npm_install(VENDOR_CACHE, NEEDED)
    if why is not None:
        print(f"could not install the npm packages into {VENDOR_CACHE}: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
