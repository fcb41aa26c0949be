"""The explorer page (explorer/) in headless Chromium, checked against PyTorch.

The page is built as `make explorer` builds it (explorer/build.py: the ONNX export of the shipped
model, onnxruntime-web from the npm cache, the page's files) and served by Python's plain
http.server on 127.0.0.1, as any static host would serve it. Every test also checks that the
page logged no console error, raised no uncaught error, and asked for nothing outside the server.

- greedy (top_k = 1): the page draws exactly PyTorch's 256 tokens, 6 prompts, 4 values of s;
- the JS sampler, given the same logits and uniforms, draws exactly what a Python reference of
  notebook 04's formulas draws (itself checked against dalle_core.sampling);
- the JS tokenizer gives TextTokenizer's ids on the first 2,000 training captions and on edge
  cases, and refuses what the Python API refuses;
- moving a slider draws a new picture; the step scrubber, the sweep and the language switch work.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import math
import os
import threading

import numpy as np
import pytest
import torch

from ..test_explorer_page import load_explorer_module
from .conftest import ARTIFACTS, CHROMIUM_ARGS

explorer_build = load_explorer_module("build")  # explorer/build.py

pytestmark = pytest.mark.slow  # a page build (first time: about 40 s) and a browser

GREEDY_CASES = [  # (prompt, seed, supercondition factor, temperature): 6 prompts, s in {1, 4, 16, 32}
    ("a red circle in the top left corner", 1, 16.0, 1.0),
    ("a red circle in the top left corner", 1, 1.0, 1.0),
    ("one small green star at the bottom right", 2, 4.0, 0.5),
    ("one small green star at the bottom right", 2, 32.0, 1.0),
    ("a large yellow square in the centre on a black background", 3, 16.0, 2.0),
    ("a large yellow square in the centre on a black background", 3, 1.0, 1.0),
    ("a blue cross at the top", 4, 32.0, 1.0),
    ("a blue cross at the top", 4, 4.0, 1.0),
    ("a purple triangle on the left and a small orange circle on the right", 5, 16.0, 1.0),
    ("a purple triangle on the left and a small orange circle on the right", 5, 4.0, 1.0),
    ("there is a white star at the bottom left against a gray background", 6, 1.0, 1.0),
    ("there is a white star at the bottom left against a gray background", 6, 32.0, 1.0),
]
EDGE_CASES = [
    "", " ", "   a  red   circle  ", "A RED Circle", "a red circle.", "a red, green; blue: circle!?",
    "a dog riding a bicycle", "xylophone zebra quixotic", "red\tcircle\nleft", "café crème brûlée",
    "红色的圆形", "красный круг", "a 红色 circle", "a red circle 🔴", "👍", "👍🏽 nice", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag",
    "🇫🇷 france", "1️⃣ keycap", "© ™ ®", "❤️ ❤︎ ❤", "🧑🏿‍🦲 person", "👩‍❤️‍💋‍👨", "🫠🫡 new emoji", "😀😃😄",
    "İstanbul", "\u212a kelvin", "a" * 80, "redredredredred", "the the the", "a  ", " a",
    "a purple triangle " * 30, " ".join(["circle"] * 61), " ".join(["circle"] * 62), " ".join(["circle"] * 63),
    "!!!", "#1 red circle @top", "\u00a0a\u00a0red\u00a0circle", "a\u2003red circle", "a\u200bred circle",
]


# ---- the page and the browser ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page_dir():
    """The page as `make explorer` builds it, into build/explorer/ (incremental)."""
    try:
        return explorer_build.build(quiet=True)
    except explorer_build.BuildError as error:
        if os.environ.get("CI"):
            pytest.fail(f"the explorer cannot be built: {error}", pytrace=False)
        pytest.skip(f"explorer test skipped: {error}")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def server(page_dir):
    """Python's plain static file server on 127.0.0.1 (no special headers, no compression)."""
    handler = functools.partial(QuietHandler, directory=str(page_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class Watch:
    """What the page did that no test wants: console errors, uncaught errors, requests leaving the server."""

    def __init__(self):
        self.console_errors, self.page_errors, self.outside_requests = [], [], []

    def check(self) -> None:
        assert not self.page_errors, f"uncaught errors in the page: {self.page_errors}"
        assert not self.console_errors, f"errors in the browser console: {self.console_errors}"
        assert not self.outside_requests, f"the page asked for something outside 127.0.0.1: {self.outside_requests}"


@pytest.fixture(scope="module")
def explorer(chromium_executable, sync_playwright, server):
    """The page, loaded once, its first picture drawn; (page, watch)."""
    watch = Watch()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_executable), headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1500}, device_scale_factor=1, locale="en-US")

        def only_local(route):
            if route.request.url.startswith(server) or route.request.url.startswith("data:"):
                route.continue_()
            else:
                watch.outside_requests.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        page = context.new_page()
        page.on("console", lambda msg: msg.type == "error" and watch.console_errors.append(msg.text))
        page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
        page.goto(server + "index.html", wait_until="load")
        page.wait_for_function("['done', 'error'].includes(document.body.dataset.state)", timeout=120_000)
        assert page.evaluate("document.body.dataset.state") == "done", page.locator("#status").text_content()
        try:
            yield page, watch
        finally:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "explorer.png"), full_page=True)
            context.close()
            browser.close()


@pytest.fixture()
def page(explorer):
    page, watch = explorer
    yield page
    watch.check()


def generate(page, text, seed, supercondition_factor, temperature, top_k):
    settings = dict(text=text, seed=seed, supercondition_factor=supercondition_factor, temperature=temperature,
                    top_k=top_k)
    return page.evaluate("settings => window.dalleExplorer.generate(settings)", settings)


@pytest.fixture(scope="module")
def model():
    from dalle_core.pipeline import MinDalle

    return MinDalle(is_verbose=False)


# ---- greedy: the page draws PyTorch's tokens ---------------------------------------------------------------
def test_greedy_tokens_equal_pytorch(page, model):
    for text, seed, s, temperature in GREEDY_CASES:
        want = model.generate_image_tokens(text, seed=seed, temperature=temperature, top_k=1,
                                           supercondition_factor=s)[0].tolist()
        got = generate(page, text, seed, s, temperature, 1)["image_tokens"]
        assert len(got) == 256
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        assert got == want, f"{text!r}, s = {s}: the page's tokens differ from PyTorch's from step {first} on"


# ---- the sampler: the same logits and uniforms give the same tokens as a Python reference --------------------
def reference_sample(logits: np.ndarray, s: float, temperature: float, top_k: int, uniform: float,
                     code_count: int = 1024) -> int:
    """Notebook 04's order, computed as explorer/js/sampling.js computes it: the blend stored as
    float32, the rest in float64, the draw by the running sum. logits: (2, vocab) float32."""
    unconditional = logits[0, :code_count].astype(np.float64)  # slice (notebook 04, section 1)
    conditional = logits[1, :code_count].astype(np.float64)
    guided = (unconditional * (1 - s) + conditional * s).astype(np.float32)  # super-condition (section 3)
    k = min(max(1, int(top_k)), code_count)
    threshold = np.sort(guided)[::-1][k - 1]  # top-k (section 9): the k-th largest; ties keep more
    row_max = float(guided.max())  # subtract the max (section 5)
    # temperature (section 8), exp, zero outside the top k
    p = [math.exp((float(g) - row_max) / temperature) if g >= threshold else 0.0 for g in guided]
    total = 0.0
    for value in p:  # in order, as the page adds them (np.sum would pair them up)
        total += value
    target, running, last = uniform * total, 0.0, 0  # draw (section 10)
    for j, value in enumerate(p):
        if value == 0.0:
            continue
        running += value
        last = j
        if target < running:
            return j
    return last


def sampler_cases(model) -> list[dict]:
    """Random logits (some with ties), real logits of a generation, extreme settings."""
    from dalle_core.encoder import text_attention_mask

    rng = np.random.default_rng(0)
    cases = []
    prompt = "a green square at the top right"
    image_tokens = model.generate_image_tokens(prompt, seed=9, top_k=64)[0]  # (256,)
    text_tokens = model.text_tokens(prompt)  # (2, 64)
    prev_tokens = torch.cat([torch.tensor([model.config.image_start_token]), image_tokens[:-1]]).repeat(2, 1)
    with torch.no_grad():  # every step's logits at once, by teacher forcing: (2, 256, 1025)
        logits = model.decoder.decode(model.encoder(text_tokens), text_attention_mask(text_tokens), prev_tokens,
                                      torch.arange(256))
    real = [logits[:, i].numpy() for i in range(0, 256, 8)]  # 32 steps, each (2, 1025)
    for i in range(300):
        if i < len(real):
            logits = real[i]
        elif i % 3 == 0:
            logits = (np.round(rng.normal(size=(2, 1025)) * 2) / 2).astype(np.float32)  # many ties
        else:
            logits = (rng.normal(size=(2, 1025)) * rng.choice([0.5, 3, 10])).astype(np.float32)
        cases.append({
            "logits": base64.b64encode(np.ascontiguousarray(logits, np.float32).tobytes()).decode(),  # (2, 1025)
            "s": float(rng.choice([0, 0.5, 1, 4, 16, 32])),
            "temperature": float(rng.choice([0.1, 0.5, 1, 1.7, 3])),
            "top_k": int(rng.choice([1, 2, 3, 17, 64, 256, 1024, 2000])),
            "uniform": float(rng.random()) if i % 50 else [0.0, 0.999999999][i // 50 % 2],
        })
    return cases


def test_js_sampler_draws_what_the_python_reference_draws(page, model):
    from dalle_core.sampling import probabilities, supercondition, top_k_mask

    cases = sampler_cases(model)
    got = page.evaluate("""async cases => {
        const sampling = await import('./js/sampling.js');
        const floats = text => new Float32Array(Uint8Array.from(atob(text), ch => ch.charCodeAt(0)).buffer);
        return cases.map(c => sampling.sampleToken(floats(c.logits),
            {supercondition_factor: c.s, temperature: c.temperature, top_k: c.top_k}, c.uniform, 1025, 1024).token);
    }""", cases)
    want = []
    for case in cases:
        logits = np.frombuffer(base64.b64decode(case["logits"]), np.float32).reshape(2, 1025).copy()
        want.append(reference_sample(logits, case["s"], case["temperature"], case["top_k"], case["uniform"]))
        # the reference is the package's sampler, step by step: the same blend (to float32 rounding),
        # the same kept set and probabilities from the same blended logits
        sliced = torch.from_numpy(logits[:, :1024])
        blended = (sliced[0].double() * (1 - case["s"]) + sliced[1].double() * case["s"]).float()
        torch.testing.assert_close(supercondition(sliced, case["s"])[0], blended, rtol=1e-6, atol=1e-4)
        p = probabilities(blended[None], case["temperature"], case["top_k"])[0].double()
        threshold = blended.sort(descending=True).values[min(case["top_k"], 1024) - 1]
        scaled = (blended.double() - blended.max()) / case["temperature"]
        reference = torch.where(blended >= threshold, scaled.exp(), 0)
        assert torch.equal(top_k_mask(blended[None], case["top_k"])[0][0], blended >= threshold)
        torch.testing.assert_close(p, reference, rtol=1e-5, atol=1e-30)
    assert got == want
    assert len(set(want)) > 100  # the cases draw all over the codebook


def test_seeded_draws_repeat_and_seeds_differ(page):
    first = generate(page, "a red circle", 11, 1.0, 1.5, 1024)["image_tokens"]
    assert generate(page, "a red circle", 11, 1.0, 1.5, 1024)["image_tokens"] == first
    assert generate(page, "a red circle", 12, 1.0, 1.5, 1024)["image_tokens"] != first


# ---- the tokenizer ---------------------------------------------------------------------------------------
def test_js_tokenizer_gives_python_ids(page, model):
    from dalle_core.course.data import make_scene
    from dalle_core.course.train import TrainSettings
    from dalle_core.pipeline import check_prompt, pack_text_tokens

    settings = TrainSettings()
    captions = [make_scene(settings.data_seed, i, wrong_colour_share=settings.wrong_colour_share).caption
                for i in range(2000)]
    texts = captions + EDGE_CASES
    got = page.evaluate("""async texts => {
        const { TextTokenizer, packTextTokens, refusedWords } = await import('./js/tokenizer.js');
        const load = async name => (await fetch('model/' + name)).json();
        const tokenizer = new TextTokenizer(await load('tokenizer.json'), await load('emoji.json'));
        return texts.map(text => {
            const ids = tokenizer.tokenize(text);
            return {ids, packed: Array.from(packTextTokens(ids, 64, 1), Number),
                    unreadable: tokenizer.unreadableWords(text), refused: refusedWords(tokenizer, text) !== null,
                    normalized: tokenizer.normalize(text)};
        });
    }""", texts)
    tokenizer = model.tokenizer
    for text, result in zip(texts, got):
        assert result["normalized"] == tokenizer.normalize(text), text
        assert result["ids"] == tokenizer.tokenize(text), text
        assert result["packed"] == pack_text_tokens(tokenizer.tokenize(text), 64).flatten().tolist(), text
        assert result["unreadable"] == tokenizer.unreadable_words(text), text
        try:
            check_prompt(tokenizer, text)
            refused = False
        except ValueError:
            refused = True
        assert result["refused"] == refused, text
    assert sum(r["refused"] for r in got) >= 2 and max(len(r["ids"]) for r in got) > 64


def test_unreadable_prompt_is_refused_and_unseen_words_flagged(page):
    page.fill("#prompt", "红色的圆形")
    assert page.locator("#flags .flag-unreadable").all_text_contents() == ["红色的圆形"]
    message = page.evaluate("""() => window.dalleExplorer.generate({text: '红色的圆形', seed: 1,
        supercondition_factor: 16, temperature: 1, top_k: 64}).then(() => 'drawn', e => e.message)""")
    assert message.startswith("the model can read no word of the prompt"), message
    assert page.locator("#refusal").is_visible()
    page.fill("#prompt", "a red dog")
    assert page.locator("#flags .flag-unseen").all_text_contents() == ["dog"]
    assert page.locator("#refusal").is_hidden()


# ---- what a user does -------------------------------------------------------------------------------------
def picture_digest(page) -> str:
    data = page.evaluate("""() => { const c = document.getElementById('picture');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
    return hashlib.sha256(bytes(data)).hexdigest()


def wait_for_new_picture(page, completed: int) -> None:
    page.wait_for_function("n => window.dalleExplorer.completed > n && document.body.dataset.state === 'done'",
                           arg=completed, timeout=60_000)


def test_moving_a_slider_draws_a_new_picture(page):
    generate(page, "a red circle in the top left corner", 1, 16.0, 1.0, 64)
    before, completed = picture_digest(page), page.evaluate("window.dalleExplorer.completed")
    slider = page.locator("#supercondition")
    slider.focus()
    for _ in range(30):  # 16 -> 1 in steps of 0.5, as a user's arrow keys move it
        page.keyboard.press("ArrowLeft")
    wait_for_new_picture(page, completed)
    assert page.locator("#supercondition-value").text_content() == "1"
    assert picture_digest(page) != before
    assert page.locator("#status").text_content().startswith("256 tokens in")
    before, completed = picture_digest(page), page.evaluate("window.dalleExplorer.completed")
    page.locator("#seed-slider").focus()
    page.keyboard.press("ArrowRight")  # seed 1 -> 2
    wait_for_new_picture(page, completed)
    assert page.locator("#seed").input_value() == "2" and picture_digest(page) != before


def test_step_scrubber_shows_the_drawn_code(page):
    tokens = generate(page, "a blue square at the bottom", 3, 4.0, 1.0, 8)["image_tokens"]
    page.locator("#step").fill("37")
    summary = page.locator("#step-summary").text_content()
    assert f"drew code {tokens[37]};" in summary and "row 2, column 5" in summary, summary
    assert "top-k keeps 8 codes" in summary, summary
    milliseconds = page.evaluate("window.dalleExplorer.showStep(200)")
    assert 0 < milliseconds < 1000
    page.locator("#entropy").click(position={"x": 30, "y": 50})  # left of the first step: step 0
    assert page.locator("#step-value").text_content() == "0"


def test_sweep_fills_a_grid(page):
    page.fill("#prompt", "a green triangle")
    page.fill("#sweep-factors", "1, 16")
    page.fill("#sweep-temperatures", "1")
    page.click("#sweep-run")
    page.wait_for_function("document.getElementById('sweep-status').textContent.startsWith('2 of 2')",
                           timeout=60_000)
    digests = page.evaluate("""() => [...document.querySelectorAll('#sweep canvas')].map(c =>
        Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).join(','))""")
    assert len(digests) == 2 and digests[0] != digests[1]


def test_language_switch_and_notebook_links(page):
    links = page.evaluate("[...document.querySelectorAll('a.notebook')].map(a => a.getAttribute('href'))")
    assert links and all(link.startswith("../0") and ".html#" in link for link in links), links
    page.click("#language")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("#panel-settings h2").text_content() == "采样设置"
    assert page.locator("a.notebook").first.text_content().startswith("笔记本 01")
    page.click("#language")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#panel-settings h2").text_content() == "Sampling settings"

