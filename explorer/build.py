"""Build the explorer page into build/explorer/ (offline once the npm package is cached).

    .venv/bin/python explorer/build.py [--out build/explorer] [--copy-to DIR] [--no-install] [--quiet]

What it writes:
- model/: the course model as ONNX graphs, its tokenizer files and a manifest, from the shipped
  weights (`python -m dalle_core export-web`); redone only when a file it depends on is newer
  than the manifest, as make would.
- vendor/onnxruntime-web/: onnxruntime-web's wasm build, from the npm package pinned in
  explorer/package.json and package-lock.json, installed once (`npm ci`) into
  build/npm-vendor/explorer/. No CDN: without the package the build stops and says why.
- index.html, style.css, js/: the page, copied from explorer/.
- links.json: each panel's link to the notebook section that explains it (explorer/sections.json),
  with the heading anchor the HTML export gives that heading.

`--copy-to DIR` then copies the whole page to DIR (make html: site/explorer/).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = ROOT / "build" / "explorer"
VENDOR_CACHE = ROOT / "build" / "npm-vendor" / "explorer"
NOTEBOOKS = ROOT / "notebooks"
PAGE_FILES = ("index.html", "style.css", "js")
# what the page loads from the npm package: the wasm-only ES module build (the Emscripten glue
# bundled in) and its wasm binary, which runs single-threaded without special headers
ORT_FILES = {
    "onnxruntime-web/dist/ort.wasm.bundle.min.mjs": "onnxruntime-web/ort.wasm.bundle.min.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm": "onnxruntime-web/ort-wasm-simd-threaded.wasm",
}


class BuildError(RuntimeError):
    """The page cannot be built here; the message says why and what to do."""


def say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, flush=True)


# ---- onnxruntime-web from npm -------------------------------------------------------------------
def vendor_ready(vendor: Path) -> bool:
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    package = vendor / "node_modules" / "onnxruntime-web" / "package.json"
    if not package.is_file() or json.loads(package.read_text())["version"] != pinned:
        return False
    return all((vendor / "node_modules" / source).is_file() for source in ORT_FILES)


def install_vendor(vendor: Path, quiet: bool) -> None:
    """`npm ci` of explorer/package-lock.json into `vendor` (the registry is asked once)."""
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is not installed: it is needed once, to fetch onnxruntime-web "
                         "(Debian/Ubuntu: apt-get install npm)")
    vendor.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(HERE / name, vendor / name)
    say(f"installing onnxruntime-web into {vendor} (once)", quiet)
    try:
        result = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", str(vendor)],
                                capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise BuildError("npm ci took more than 10 minutes") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BuildError(f"npm ci failed ({last}); run `make explorer` once where npm reaches its registry")
    if not vendor_ready(vendor):
        raise BuildError(f"npm ci finished but {vendor} lacks the files the page needs: {sorted(ORT_FILES)}")


def provide_vendor(out: Path, vendor: Path, install: bool, quiet: bool) -> None:
    if not vendor_ready(vendor):
        if not install:
            raise BuildError(f"{vendor} lacks onnxruntime-web and --no-install was given")
        install_vendor(vendor, quiet)
    for source, target in ORT_FILES.items():
        destination = out / "vendor" / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(vendor / "node_modules" / source, destination)
    package = json.loads((vendor / "node_modules" / "onnxruntime-web" / "package.json").read_text())
    (out / "vendor" / "onnxruntime-web" / "NOTICE.txt").write_text(  # the package ships no licence file
        f"onnxruntime-web {package['version']}, from npm; licence: {package['license']} "
        "(Copyright (c) Microsoft Corporation). https://github.com/microsoft/onnxruntime\n", encoding="utf-8")


# ---- the model ----------------------------------------------------------------------------------
def model_inputs() -> list[Path]:
    """The files the export reads: the shipped model and the package's modules."""
    package = ROOT / "dalle_core"
    return [*package.glob("*.py"), package / "course" / "web_export.py", *(package / "assets" / "tiny").iterdir()]


def model_is_current(model: Path) -> bool:
    manifest = model / "manifest.json"
    if not manifest.is_file():
        return False
    built = manifest.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in model_inputs())


def provide_model(out: Path, quiet: bool) -> None:
    model = out / "model"
    if model_is_current(model):
        say(f"{model}: up to date", quiet)
        return
    from dalle_core.course.web_export import export_web

    export_web(model, is_verbose=not quiet)


# ---- links to the notebooks ---------------------------------------------------------------------
def heading_anchor(heading: str) -> str:
    """The id the HTML export (nbconvert) gives a Markdown heading, e.g. '8.-Temperature'."""
    from nbconvert.filters.markdown import markdown2html

    match = re.search(r'id="([^"]+)"', markdown2html(f"## {heading}"))
    if match is None:
        raise BuildError(f"nbconvert gave no anchor for the heading {heading!r}")
    return match.group(1)


def notebook_headings(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    return [line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{1,6} ", line)]


def section_links() -> dict[str, dict[str, str]]:
    """explorer/sections.json resolved: each panel's notebook page and heading anchor.

    Pages are linked as the static site lays them out (site/NN_name.html beside site/explorer/)."""
    sections = json.loads((HERE / "sections.json").read_text(encoding="utf-8"))
    links = {}
    for panel, (notebook, heading) in sections.items():
        path = NOTEBOOKS / f"{notebook}.ipynb"
        if not path.is_file():
            raise BuildError(f"sections.json: panel {panel!r} links to {path}, which does not exist")
        if heading not in notebook_headings(path):
            raise BuildError(f"sections.json: {path.name} has no heading {heading!r} (panel {panel!r})")
        links[panel] = {"href": f"../{notebook}.html#{heading_anchor(heading)}", "notebook": notebook[:2],
                        "heading": re.sub(r"[*`]", "", heading)}
    return links


# ---- the page -----------------------------------------------------------------------------------
def copy_page(out: Path) -> None:
    for name in PAGE_FILES:
        source, target = HERE / name, out / name
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    (out / "links.json").write_text(json.dumps(section_links(), indent=1, ensure_ascii=False), encoding="utf-8")


def build(out: Path = DEFAULT_OUT, vendor: Path = VENDOR_CACHE, install: bool = True, quiet: bool = False) -> Path:
    """Build the page into `out` (model, vendored runtime, page files); return `out`."""
    start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    provide_vendor(out, vendor, install, quiet)
    provide_model(out, quiet)
    copy_page(out)
    say(f"built the explorer in {out} ({time.monotonic() - start:.0f} s)", quiet)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--copy-to", type=Path, help="then copy the built page to this folder (replaced)")
    parser.add_argument("--no-install", action="store_true", help="never run npm; fail if the package is missing")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = build(args.out, install=not args.no_install, quiet=args.quiet)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.copy_to is not None:
        shutil.rmtree(args.copy_to, ignore_errors=True)
        shutil.copytree(out, args.copy_to)
        say(f"copied the explorer to {args.copy_to}", args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
