"""The lecture decks: slides/decks/*.md, written for projection, rendered to reveal.js pages.

A deck is Markdown. It opens with a front matter block (`title:` and `notebooks:`, the notebook
stems it draws on), then slides separated by a line `---`. Everything after a line `Note:` on a
slide is its speaker notes (press `s` in the browser). A figure of the course is written
`![what it shows](figure:<name>)`: the PNG output of the notebook code cell tagged
`figure-<name>`, taken from the notebooks' stored outputs at build time (course_outline.figures),
so a deck never shows a stale picture. `images/...` are the pictures in notebooks/images/.

The rules a deck keeps (checked by tests/test_teaching.py and tests/browser/test_decks.py):
at most MAX_SLIDES slides, speaker notes on every slide, no code block longer than
MAX_CODE_LINES lines, every figure tagged in a notebook, and no slide overflowing the
WIDTH x HEIGHT slide box.
"""
from __future__ import annotations

import html
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import course_outline
import export_common as common

DECKS = common.ROOT / "slides" / "decks"
WIDTH, HEIGHT = 1280, 720  # the slide box, in CSS pixels (16:9)
MAX_SLIDES = 40
MIN_SLIDES = 25
MAX_CODE_LINES = 12
SEPARATOR = re.compile(r"^---\s*$")
NOTE = re.compile(r"^Note:\s*$")
FIGURE = re.compile(r"!\[([^\]]*)\]\(figure:([a-z0-9-]+)\)")
IMAGE = re.compile(r"!\[[^\]]*\]\((images/[^)\s]+)\)")


@dataclass
class Slide:
    body: str  # Markdown
    notes: str  # Markdown

    def figures(self) -> list[str]:
        return [m.group(2) for m in FIGURE.finditer(self.body)]

    def code_blocks(self) -> list[list[str]]:
        blocks, current = [], None
        for line in self.body.splitlines():
            if line.lstrip().startswith("```"):
                if current is None:
                    current = []
                else:
                    blocks.append(current)
                    current = None
            elif current is not None:
                current.append(line)
        return blocks


@dataclass
class Deck:
    path: Path
    title: str
    notebooks: list[str]
    slides: list[Slide] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    def figures(self) -> list[str]:
        return [name for slide in self.slides for name in slide.figures()]

    def images(self) -> list[str]:
        return [m.group(1) for slide in self.slides for m in IMAGE.finditer(slide.body)]


def deck_paths() -> list[Path]:
    return sorted(DECKS.glob("*.md"))


def parse(path: Path) -> Deck:
    """A deck file: front matter, then slides cut at `---` lines outside code blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not SEPARATOR.match(lines[0]):
        raise ValueError(f"{path.name}: a deck starts with a front matter block between two --- lines")
    end = next((i for i in range(1, len(lines)) if SEPARATOR.match(lines[i])), None)
    if end is None:
        raise ValueError(f"{path.name}: the front matter block is not closed by a --- line")
    meta = dict(line.split(":", 1) for line in lines[1:end] if ":" in line)
    meta = {key.strip(): value.strip() for key, value in meta.items()}
    if "title" not in meta:
        raise ValueError(f"{path.name}: the front matter has no title:")
    deck = Deck(path, meta["title"], meta.get("notebooks", "").split())
    chunks: list[list[str]] = [[]]
    fenced = False
    for line in lines[end + 1:]:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and SEPARATOR.match(line):
            chunks.append([])
        else:
            chunks[-1].append(line)
    for chunk in chunks:
        if not any(line.strip() for line in chunk):
            continue
        cut = next((i for i, line in enumerate(chunk) if NOTE.match(line)), len(chunk))
        deck.slides.append(Slide("\n".join(chunk[:cut]).strip(), "\n".join(chunk[cut + 1:]).strip()))
    return deck


# ---- rendering ----------------------------------------------------------------------------------
DECK_CSS = f"""
.reveal {{ font-family: system-ui, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 30px; color: #1a1a1a; }}
.reveal .slides section {{ text-align: left; height: {HEIGHT}px; box-sizing: border-box; padding: 10px 0 0 0; }}
.reveal h1, .reveal h2, .reveal h3 {{ font-family: inherit; text-transform: none; color: #123; letter-spacing: 0; }}
.reveal h1 {{ font-size: 58px; margin-top: 150px; }}
.reveal h2 {{ font-size: 42px; margin-bottom: 18px; }}
.reveal h3 {{ font-size: 32px; }}
.reveal p, .reveal li {{ line-height: 1.35; }}
.reveal ul, .reveal ol {{ display: block; margin-left: 1.1em; }}
.reveal li {{ margin: 6px 0; }}
.reveal pre {{ width: 100%; box-sizing: border-box; font-size: 21px; line-height: 1.3; box-shadow: none;
  margin: 12px 0; }}
.reveal pre code, .reveal .highlight pre {{ background: #f4f4f4; padding: 12px 16px; max-height: none; }}
.reveal code {{ font-size: 0.9em; background: #f1f1f1; padding: 0 4px; border-radius: 3px; }}
.reveal pre code {{ background: none; padding: 0; }}
.reveal table {{ font-size: 24px; border-collapse: collapse; margin: 10px 0; }}
.reveal table th, .reveal table td {{ padding: 4px 12px; border-bottom: 1px solid #ccc; }}
.reveal img {{ display: block; margin: 8px auto; max-width: 100%; max-height: 470px; }}
.reveal img.tall {{ max-height: 560px; }}
.reveal blockquote {{ width: 100%; margin: 12px 0; padding: 8px 16px; font-style: normal; font-size: 26px;
  background: #fff6e0; border-left: 6px solid #e0a000; box-shadow: none; box-sizing: border-box; }}
.reveal .caption {{ font-size: 20px; color: #555; text-align: center; margin-top: 0; }}
.reveal .small {{ font-size: 24px; }}
.reveal .deck-home {{ position: fixed; left: 12px; bottom: 8px; font-size: 14px; z-index: 30; }}
"""


def render_body(markdown: str, figure_dir: str) -> str:
    """A slide's Markdown as HTML: figures point at <figure_dir>/<name>.png, with their text as a caption."""
    def figure(match: re.Match) -> str:
        return f"![{match.group(1)}]({figure_dir}/{match.group(2)}.png)"

    body = common.render_markdown(FIGURE.sub(figure, markdown))
    # a figure's alt text is shown as a caption under it: on a projected slide, a picture says what it is
    return re.sub(r'<p><img src="([^"]+)" alt="([^"]*)" ?/?></p>',
                  lambda m: f'<img src="{m.group(1)}" alt="{m.group(2)}"><p class="caption">{m.group(2)}</p>',
                  body)


def render(deck: Deck, urls: dict[str, str], figure_dir: str = "figures") -> str:
    """The reveal.js page of a deck; `urls` gives reveal.js's folder and MathJax's script (local or CDN)."""
    from pygments.formatters import HtmlFormatter

    sections = []
    for slide in deck.slides:
        notes = common.render_markdown(slide.notes) if slide.notes else ""
        sections.append(f"<section>\n{render_body(slide.body, figure_dir)}\n"
                        f'<aside class="notes">{notes}</aside>\n</section>')
    reveal = urls["reveal"]
    pygments_css = HtmlFormatter(style="default").get_style_defs(".highlight")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(deck.title)}</title>
<link rel="stylesheet" href="{reveal}/dist/reveal.css">
<link rel="stylesheet" href="{reveal}/dist/theme/white.css">
<style>{pygments_css}{DECK_CSS}</style>
<script>window.MathJax = {{tex: {{inlineMath: [['$', '$'], ['\\\\(', '\\\\)']]}},
                  svg: {{fontCache: 'global'}}}};</script>
<script src="{urls["mathjax_js"]}"></script>
</head><body>
<div class="reveal"><div class="slides">
{chr(10).join(sections)}
</div></div>
<a class="deck-home" href="index.html">all slides</a>
<script src="{reveal}/dist/reveal.js"></script>
<script src="{reveal}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({{width: {WIDTH}, height: {HEIGHT}, margin: 0.04, center: false, hash: true,
                   transition: "none", slideNumber: "c/t", plugins: [RevealNotes]}});
</script>
</body></html>
"""


def build(out: Path, urls: dict[str, str], paths: list[Path] | None = None) -> list[tuple[Deck, str]]:
    """Every deck as <out>/<deck>.html, its figures in <out>/figures/ and pictures in <out>/images/;
    a KeyError naming any figure no notebook cell is tagged with."""
    decks = [parse(path) for path in (paths if paths is not None else deck_paths())]
    wanted = {name for deck in decks for name in deck.figures()}
    course_outline.write_figures(out / "figures", wanted)
    if any(deck.images() for deck in decks):
        shutil.copytree(course_outline.NOTEBOOKS / "images", out / "images", dirs_exist_ok=True)
    built = []
    for deck in decks:
        target = out / f"{deck.name}.html"
        target.write_text(render(deck, urls), encoding="utf-8")
        built.append((deck, target.name))
    return built
