"""The explorer's files without a browser: its links, its server, its make targets, its docs.

tests/browser/test_explorer.py runs the page itself in headless Chromium.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from .test_web_export import TOLERANCES

ROOT = Path(__file__).resolve().parents[1]
EXPLORER = ROOT / "explorer"


def load_explorer_module(name: str):
    """explorer/NAME.py as the module explorer_NAME (explorer/ is no package, and its names are generic)."""
    if f"explorer_{name}" in sys.modules:
        return sys.modules[f"explorer_{name}"]
    spec = importlib.util.spec_from_file_location(f"explorer_{name}", EXPLORER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


explorer_build = load_explorer_module("build")
explorer_serve = load_explorer_module("serve")


def test_every_panel_links_a_heading_of_a_notebook():
    """A renamed notebook section breaks the page's link: caught here, not by a learner."""
    sections = json.loads((EXPLORER / "sections.json").read_text(encoding="utf-8"))
    assert {"supercondition", "temperature", "top_k", "seed", "picture", "step", "entropy", "sweep"} <= set(sections)
    for panel, (notebook, heading) in sections.items():
        headings = explorer_build.notebook_headings(ROOT / "notebooks" / f"{notebook}.ipynb")
        assert heading in headings, f"panel {panel!r}: {notebook} has no heading {heading!r}"
    links = explorer_build.section_links()
    assert links["temperature"]["href"] == "../04_sampling.html#8.-Temperature"
    assert links["max"]["href"] == "../04_sampling.html#5.-Why-subtract-the-maximum-before-exp?"


def test_every_panel_of_the_page_has_its_link_and_every_link_its_panel():
    html = (EXPLORER / "index.html").read_text(encoding="utf-8")
    used = set(re.findall(r'data-link="([^"]+)"', html))
    assert used == set(json.loads((EXPLORER / "sections.json").read_text(encoding="utf-8")))


def test_both_languages_have_every_string():
    text = (EXPLORER / "js" / "i18n.js").read_text(encoding="utf-8")
    english, chinese = text.split("\n  zh: {")
    keys = lambda block: set(re.findall(r"^    (\w+):", block, re.MULTILINE))  # noqa: E731
    assert keys(english) == keys(chinese) and len(keys(english)) > 40
    html = (EXPLORER / "index.html").read_text(encoding="utf-8")
    assert set(re.findall(r'data-i18n="(\w+)"', html)) <= keys(english)


def test_the_page_loads_nothing_from_elsewhere():
    for path in [EXPLORER / "index.html", EXPLORER / "style.css", *(EXPLORER / "js").glob("*.js")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert not re.search(r"""(import|fetch)\s*\(?\s*["'`]https?:""", text), path
        assert "cdn" not in text.lower(), path


def test_server_sends_gzip_and_links_into_the_site(tmp_path):
    page, site = tmp_path / "page", tmp_path / "site"
    (page / "model").mkdir(parents=True)
    site.mkdir()
    (page / "index.html").write_text("<p>explorer</p>")
    (page / "model" / "decoder_step.onnx").write_bytes(bytes(range(256)) * 64)
    (site / "04_sampling.html").write_text("<h2 id='8.-Temperature'>8. Temperature</h2>")
    server = explorer_serve.make_server(page, site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        request = urllib.request.Request(base + "/explorer/model/decoder_step.onnx",
                                         headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.read()) == (page / "model" / "decoder_step.onnx").read_bytes()
        with urllib.request.urlopen(base + "/explorer/") as response:  # no Accept-Encoding: plain
            assert response.headers["Content-Encoding"] is None and response.read() == b"<p>explorer</p>"
        with urllib.request.urlopen(base + "/04_sampling.html") as response:  # ../04_sampling.html from the page
            assert b"8.-Temperature" in response.read()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(base + "/explorer/../../etc/passwd")
        with urllib.request.urlopen(base + "/") as response:  # / redirects to the page
            assert response.url.endswith("/explorer/")
    finally:
        server.shutdown()
        server.server_close()


def test_make_targets_build_serve_and_copy_into_the_site():
    def dry_run(target: str) -> str:
        result = subprocess.run(["make", "-n", target, "STAMP=/dev/null"], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout

    explorer = dry_run("explorer")
    assert "explorer/build.py" in explorer and "explorer/serve.py --port 8000" in explorer
    assert "explorer/build.py --copy-to site/explorer" in dry_run("html")
    assert "explorer/bench.py" in dry_run("bench-explorer")


def test_vendored_runtime_is_pinned_with_a_lockfile():
    package = json.loads((EXPLORER / "package.json").read_text())
    lock = json.loads((EXPLORER / "package-lock.json").read_text())
    version = package["dependencies"]["onnxruntime-web"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)  # an exact version, not a range
    entry = lock["packages"]["node_modules/onnxruntime-web"]
    assert entry["version"] == version and entry["integrity"].startswith("sha512-")


def test_docs_quote_the_tested_tolerances():
    text = (ROOT / "docs" / "explorer.md").read_text(encoding="utf-8")
    for name, tolerance in TOLERANCES.items():
        assert re.search(rf"`{name}`[^|\n]*\|\s*{tolerance:g}\b", text), f"docs/explorer.md: {name} {tolerance:g}"
    assert "window.dalleExplorer.generate" in text
