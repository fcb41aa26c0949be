"""What the two exports (export_html.py: web pages, export_slides.py: slides) share, defined once:
scripts from npm copied beside the pages so that they work offline, interactive widgets turned
into a note, and the student build's notebooks without links to the solutions.

The npm packages are installed once into a cache folder (default build/npm-vendor/) and the
files a page needs are copied from there into <out>/vendor/. Where that is impossible (no npm,
no registry) the caller falls back to public CDNs and says so.
"""
from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
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
