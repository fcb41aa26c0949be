"""The lecture decks as projected: every deck builds offline, and no slide overflows its 1280x720 box.

Each deck (slides/decks/*.md) is built with scripts/export_slides.py's reveal.js, MathJax and the
course's figures, opened from disk in headless Chromium (Debian's, through Playwright, with the
launch options of the JupyterLab test) at the slide size, and walked slide by slide: once MathJax
has typeset and every picture has loaded, every element of the slide must lie inside the slide
box, and no code block or table may need a scroll bar. A screenshot of the worst slide of each
deck is kept in build/browser/.
"""
from __future__ import annotations

import importlib
import os
import sys

import pytest

from .conftest import ARTIFACTS, CHROMIUM_ARGS, ROOT

TOLERANCE = 2  # CSS pixels: rounding of the scaled layout

MEASURE = """
async () => {
    if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
    await Promise.all([...document.images].map(img => img.complete ? null
        : new Promise(done => { img.onload = img.onerror = done; })));
    const config = Reveal.getConfig();
    const slides = Reveal.getSlides();
    const report = [];
    for (let i = 0; i < slides.length; i++) {
        Reveal.slide(i);
        await new Promise(requestAnimationFrame);
        const box = document.querySelector('.reveal .slides').getBoundingClientRect();
        const scale = box.width / config.width;
        const section = slides[i];
        let bottom = 0, right = 0;
        const scrolling = [];
        for (const element of section.querySelectorAll('*')) {
            if (element.closest('aside.notes')) continue;
            const rect = element.getBoundingClientRect();
            if (rect.width === 0 && rect.height === 0) continue;
            bottom = Math.max(bottom, (rect.bottom - box.top) / scale);
            right = Math.max(right, (rect.right - box.left) / scale);
            if (['PRE', 'TABLE', 'CODE'].includes(element.tagName)
                && (element.scrollWidth > element.clientWidth + 1 || element.scrollHeight > element.clientHeight + 1)
                && getComputedStyle(element).overflow !== 'visible') {
                scrolling.push(element.tagName);
            }
        }
        const broken = [...section.querySelectorAll('img')].filter(img => !img.naturalWidth).map(img => img.src);
        report.push({index: i, title: (section.querySelector('h1,h2,h3') || {}).textContent || '',
                     bottom, right, scrolling, broken, notes: !!section.querySelector('aside.notes *')});
    }
    return {width: config.width, height: config.height, slides: report};
}
"""


def load_script(name: str):
    """scripts/<name>.py, imported by its name (the scripts import each other so)."""
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def built_decks(tmp_path_factory):
    """The decks built offline into a temporary folder, with the scripts from the npm cache."""
    slides = load_script("export_slides")
    common = load_script("export_common")
    if not common.vendor_ready(common.VENDOR_CACHE, slides.VENDOR_FILES):
        message = (f"reveal.js and MathJax are not in {common.VENDOR_CACHE}: run `make vendor` once "
                   "(npm install from the registry) to measure the decks")
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("slides")
    urls, local = slides.script_urls(common.VENDOR_CACHE, out, install=False)
    assert local
    built = slides.decks.build(out, urls)
    assert built, "no deck in slides/decks/"
    return out, built


@pytest.mark.slow  # a browser: about half a minute
def test_no_slide_overflows(chromium_executable, sync_playwright, built_decks, tmp_path):
    out, built = built_decks
    decks = load_script("decks")
    problems, outside = [], []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_executable), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": decks.WIDTH, "height": decks.HEIGHT}, device_scale_factor=1)

            def only_files(route):
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_files)
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            for deck, href in built:
                page.goto((out / href).as_uri(), wait_until="load")
                page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=30_000)
                report = page.evaluate(MEASURE)
                assert len(report["slides"]) == len(deck.slides), (deck.name, len(report["slides"]))
                assert (report["width"], report["height"]) == (decks.WIDTH, decks.HEIGHT)
                worst = max(report["slides"], key=lambda s: s["bottom"])
                page.evaluate(f"Reveal.slide({worst['index']})")
                page.screenshot(path=str(ARTIFACTS / f"deck-{deck.name}-tallest.png"))
                for slide in report["slides"]:
                    where = f"{deck.name} slide {slide['index'] + 1} ({slide['title'].strip()[:50]!r})"
                    if slide["bottom"] > decks.HEIGHT + TOLERANCE:
                        problems.append(f"{where}: content reaches {slide['bottom']:.0f} px of {decks.HEIGHT}")
                    if slide["right"] > decks.WIDTH + TOLERANCE:
                        problems.append(f"{where}: content reaches {slide['right']:.0f} px across, of {decks.WIDTH}")
                    if slide["scrolling"]:
                        problems.append(f"{where}: {', '.join(slide['scrolling'])} needs a scroll bar")
                    if slide["broken"]:
                        problems.append(f"{where}: pictures that did not load: {slide['broken']}")
                    if not slide["notes"]:
                        problems.append(f"{where}: no speaker notes")
            assert not errors, f"script errors in the decks: {errors}"
        finally:
            browser.close()
    assert not outside, f"the decks asked for something outside their folder: {outside[:5]}"
    assert not problems, "slides that do not fit their box:\n" + "\n".join(problems)
