"""What the teaching material reads from the notebooks, in one place: titles, headings, the
**Time:** line, the "You can now explain" list and the figures tagged for the lecture decks.

The syllabus, the decks, the quiz bank and the site builder read the notebooks through this
module at build and test time, so that when a notebook changes, they follow it or a test
names what to re-plan.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURE_TAG = "figure-"  # a code cell tagged figure-<name> offers its PNG output to the decks
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
# "about 30 minutes (20 to read and run, 10 for the exercises)"
TIME_TOTAL = re.compile(
    r"\*\*Time:\*\*\s*(?:about|roughly)?\s*(\d+)\s*minutes\s*\(\s*(\d+)\s*to read and run,\s*(\d+)\s*for the exercises"
)
# "roughly 45 minutes to read and run, 30 more for the exercises" (or "another 30")
TIME_PARTS = re.compile(
    r"\*\*Time:\*\*\s*(?:about|roughly)?\s*(\d+)\s*minutes\s*to read and run,\s*(?:another\s*)?(\d+)\s*(?:more\s*)?"
    r"for the exercises"
)


@dataclass(frozen=True)
class Time:
    """A notebook's own estimate: minutes to read and run it, and minutes for its exercises."""

    read: int
    exercises: int

    @property
    def total(self) -> int:
        return self.read + self.exercises


@dataclass(frozen=True)
class Figure:
    name: str  # the tag without "figure-"
    notebook: str  # file stem, e.g. "04_sampling"
    cell: int  # index among all cells
    png: bytes


def notebook_path(stem: str) -> Path:
    """notebooks/<stem>.ipynb; a FileNotFoundError that names the notebooks there when missing."""
    path = NOTEBOOKS / f"{stem}.ipynb"
    if not path.is_file():
        known = ", ".join(p.stem for p in lecture_notebooks())
        raise FileNotFoundError(f"no notebook {stem!r} in {NOTEBOOKS} (there are: {known})")
    return path


def lecture_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@cache
def _read(path: Path, mtime: float) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def read(path: Path) -> nbformat.NotebookNode:
    """The notebook, read once per version of the file."""
    return _read(path, path.stat().st_mtime)


def markdown_lines(notebook: nbformat.NotebookNode):
    """Every markdown line outside fenced code blocks, in order."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if FENCE.match(line):
                fenced = not fenced
            elif not fenced:
                yield line


def title(notebook: nbformat.NotebookNode, fallback: str = "") -> str:
    for line in markdown_lines(notebook):
        match = HEADING.match(line)
        if match and len(match.group(1)) == 1:
            return match.group(2)
    return fallback


def headings(notebook: nbformat.NotebookNode) -> list[str]:
    """Every heading's text (any level), in order."""
    return [m.group(2) for line in markdown_lines(notebook) if (m := HEADING.match(line))]


def section_items(notebook: nbformat.NotebookNode, heading: str) -> list[str]:
    """The top-level bullet items ("- ...") under a `## heading`, up to the next heading."""
    items: list[str] = []
    inside = False
    for line in markdown_lines(notebook):
        match = HEADING.match(line)
        if match:
            if inside:
                break
            inside = match.group(2).strip().lower() == heading.lower()
            continue
        if inside and line.startswith("- "):
            items.append(line[2:].strip())
        elif inside and items and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()  # a wrapped item
    return items


def learn_items(notebook: nbformat.NotebookNode) -> list[str]:
    return section_items(notebook, "What you will learn")


def explain_items(notebook: nbformat.NotebookNode) -> list[str]:
    return section_items(notebook, "You can now explain")


def time_of(notebook: nbformat.NotebookNode, name: str = "notebook") -> Time:
    """The **Time:** line's minutes; a ValueError quoting the line when its wording is not one of the two
    the course uses ("about T minutes (R to read and run, E for the exercises)" or "R minutes to read
    and run, E more for the exercises")."""
    text = "\n".join(markdown_lines(notebook))
    line = next((x for x in text.splitlines() if "**Time:**" in x), None)
    if line is None:
        raise ValueError(f"{name} has no **Time:** line")
    if match := TIME_TOTAL.search(line):
        total, read_run, exercises = (int(g) for g in match.groups())
        if read_run + exercises != total:
            raise ValueError(f"{name}: the **Time:** line's parts ({read_run} + {exercises}) do not add up to {total}")
        return Time(read_run, exercises)
    if match := TIME_PARTS.search(line):
        return Time(int(match.group(1)), int(match.group(2)))
    raise ValueError(f"{name}: cannot read the minutes of its **Time:** line: {line[:160]!r}")


def figures(paths: list[Path] | None = None) -> dict[str, Figure]:
    """Every code cell tagged figure-<name>, with its (last) PNG output; a ValueError for a name used
    twice or a tagged cell without a PNG."""
    found: dict[str, Figure] = {}
    for path in paths if paths is not None else lecture_notebooks():
        for index, cell in enumerate(read(path).cells):
            for tag in cell.get("metadata", {}).get("tags", []):
                if not tag.startswith(FIGURE_TAG):
                    continue
                name = tag[len(FIGURE_TAG):]
                pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
                if not pngs:
                    raise ValueError(f"{path.name} cell {index} is tagged {tag} but has no PNG output")
                if name in found:
                    other = found[name]
                    raise ValueError(f"figure {name!r} is tagged twice: {other.notebook} cell {other.cell} "
                                     f"and {path.stem} cell {index}")
                found[name] = Figure(name, path.stem, index, base64.b64decode(pngs[-1]))
    return found


def write_figures(out: Path, names: set[str] | None = None) -> dict[str, Path]:
    """PNG files <out>/<name>.png of the tagged figures (only `names`, when given): a KeyError naming the
    figures no cell is tagged with."""
    found = figures()
    wanted = set(found) if names is None else names
    missing = sorted(wanted - set(found))
    if missing:
        raise KeyError(f"no notebook cell is tagged {', '.join(FIGURE_TAG + m for m in missing)} "
                       f"(tagged: {', '.join(sorted(found)) or 'none'}); tag the figure's code cell in its notebook")
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in sorted(wanted):
        path = out / f"{name}.png"
        path.write_bytes(found[name].png)
        written[name] = path
    return written
