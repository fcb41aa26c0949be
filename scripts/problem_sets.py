"""The problem sets: release the students' notebooks, and grade a folder of submissions, with nbgrader.

    .venv/bin/python scripts/problem_sets.py release [--out build/problem-sets]
    .venv/bin/python scripts/problem_sets.py grade SUBMISSIONS [--out grades.csv] [--problem-set ps1]

Each problem set is an nbgrader source notebook, problem-sets/<ps>/<ps>.ipynb: answer cells
with the solution between `### BEGIN SOLUTION` / `### END SOLUTION`, visible sanity checks
(locked cells the students run), hidden tests between `### BEGIN HIDDEN TESTS` / `### END HIDDEN
TESTS`, and written answers graded by hand with docs/rubric.md.

`release` runs `nbgrader generate_assignment`: the students' copy has no solutions, no hidden
tests and no outputs. `grade` lays a folder of submissions (`<student>.ipynb`, or
`<student>/<ps>.ipynb`) out as an nbgrader course in a temporary folder, runs `nbgrader
autograde` (each notebook executed in a fresh kernel of this Python, with the hidden tests put
back from the source, so a student cannot edit them away) and writes one CSV row per student:
the points of every autograded cell, their sum, and the points the written answers are worth.
Everything runs offline, without Docker. The problem set is found from the submissions' cell ids
when --problem-set is not given.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBLEM_SETS = ROOT / "problem-sets"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # what may name a student's folder in the course


@dataclass(frozen=True)
class Exported:
    """A problem set in the site: its page, the notebook to download, the lecturer's page (or None)."""

    name: str
    title: str
    page: str
    notebook: str
    source_page: str | None


def names() -> list[str]:
    """The problem sets: problem-sets/<ps>/<ps>.ipynb."""
    return sorted(p.parent.name for p in PROBLEM_SETS.glob("*/*.ipynb") if p.stem == p.parent.name)


def source_of(name: str) -> Path:
    path = PROBLEM_SETS / name / f"{name}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"no problem set {name!r}: {path} is missing (there are: {', '.join(names())})")
    return path


def cell_ids(notebook: dict) -> set[str]:
    return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in notebook["cells"]} - {None}


def graded_cells(name: str) -> list[tuple[str, float, bool]]:
    """(grade_id, points, autograded) of every graded cell of a problem set, in order."""
    notebook = json.loads(source_of(name).read_text(encoding="utf-8"))
    cells = []
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            autograded = cell["cell_type"] == "code" and not meta.get("solution")
            cells.append((meta["grade_id"], float(meta.get("points", 0)), autograded))
    return cells


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run nbgrader of this Python on the course folder `course`; a RuntimeError with its log on failure."""
    bin_dir = str(Path(sys.executable).parent)  # nbgrader calls `alembic` from PATH
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"]
    result = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return result


def check_nbgrader() -> None:
    try:
        import nbgrader  # noqa: F401
    except ImportError as error:
        raise SystemExit(f"nbgrader is missing ({error}): install the grading extra, "
                         "`.venv/bin/pip install -e '.[grading]'` (make does it)") from None


def course_with(problem_sets: list[str], root: Path) -> Path:
    """An nbgrader course folder in `root` with the problem sets generated (gradebook included)."""
    for name in problem_sets:
        shutil.copytree(source_of(name).parent, root / "source" / name, ignore=shutil.ignore_patterns(
            ".ipynb_checkpoints", "__pycache__"))
        nbgrader(root, "generate_assignment", name, "--force")
    return root


def release(out: Path, problem_sets: list[str] | None = None) -> dict[str, Path]:
    """The students' notebooks, <out>/<ps>.ipynb, as nbgrader releases them."""
    check_nbgrader()
    problem_sets = problem_sets or names()
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        course = course_with(problem_sets, Path(tmp))
        for name in problem_sets:
            target = out / f"{name}.ipynb"
            shutil.copy2(course / "release" / name / f"{name}.ipynb", target)
            target.chmod(0o644)
            written[name] = target
    return written


# ---- grading ----------------------------------------------------------------------------------
def submissions_in(folder: Path) -> dict[str, Path]:
    """{student: notebook} from `<student>.ipynb` files or `<student>/<any>.ipynb` folders."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions (<student>.ipynb files)")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".ipynb":
            student, notebook = path.stem, path
        elif path.is_dir() and (inside := sorted(path.glob("*.ipynb"))):
            if len(inside) > 1:
                raise ValueError(f"{path} holds {len(inside)} notebooks; keep the one to grade")
            student, notebook = path.name, inside[0]
        else:
            continue
        if not STUDENT_ID.match(student):
            raise ValueError(f"{notebook}: {student!r} cannot name a student (letters, digits, _ . - only)")
        if student in found:
            raise ValueError(f"two submissions for {student}: {found[student]} and {notebook}")
        found[student] = notebook
    if not found:
        raise FileNotFoundError(f"no submissions (<student>.ipynb) in {folder}")
    return found


def which_problem_set(notebooks: list[Path]) -> str:
    """The problem set whose cell ids the submissions carry (a ValueError if none or several)."""
    sources = {name: cell_ids(json.loads(source_of(name).read_text(encoding="utf-8"))) for name in names()}
    found = set()
    for path in notebooks:
        try:
            ids = cell_ids(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError) as error:
            raise ValueError(f"{path} is not a notebook ({error})") from None
        found |= {name for name, source in sources.items() if ids & source}
    if len(found) != 1:
        raise ValueError(f"cannot tell which problem set the submissions answer (matches: {sorted(found) or 'none'}); "
                         "name it with --problem-set")
    return found.pop()


def grade(folder: Path, out: Path, problem_set: str | None = None) -> list[dict[str, object]]:
    """Autograde every submission in `folder`; write and return one row per student."""
    check_nbgrader()
    from nbgrader.api import Gradebook, MissingEntry

    submissions = submissions_in(folder)
    problem_set = problem_set or which_problem_set(list(submissions.values()))
    cells = graded_cells(problem_set)
    auto = [(gid, points) for gid, points, autograded in cells if autograded]
    written_points = sum(points for _, points, autograded in cells if not autograded)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        course = course_with([problem_set], Path(tmp))
        for student, notebook in submissions.items():
            target = course / "submitted" / student / problem_set / f"{problem_set}.ipynb"
            target.parent.mkdir(parents=True)
            shutil.copy2(notebook, target)
        nbgrader(course, "autograde", problem_set, "--create", "--force")
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
            for student in submissions:
                row: dict[str, object] = {"student": student}
                try:
                    submission = gradebook.find_submission(problem_set, student)
                    grades = {g.name: g for g in submission.notebooks[0].grades}
                except (MissingEntry, IndexError):
                    grades = {}
                for gid, _ in auto:
                    grade_ = grades.get(gid)
                    row[gid] = 0.0 if grade_ is None or grade_.auto_score is None else float(grade_.auto_score)
                row["autograded"] = sum(float(row[gid]) for gid, _ in auto)
                row["autograded_max"] = sum(points for _, points in auto)
                row["written_max"] = written_points
                rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


# ---- the site ---------------------------------------------------------------------------------
def title_of(path: Path) -> str:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown" and (match := re.search(r"^# (.+)$", text, re.MULTILINE)):
            return match.group(1).strip()
    return path.stem


def export_site(out: Path, exporter, mathjax_js: str, student: bool) -> list[Exported]:
    """<out>/<ps>.ipynb and .html, the students' copy; for the lecturer also <out>/source/<ps>.html."""
    import nbformat

    if not names():
        return []
    released = release(out)
    exported = []

    def write(source: Path, target: Path, depth: str) -> None:
        """`depth`: from the page up to the site's root, where MathJax's local copy lies."""
        node = nbformat.read(source, as_version=4)
        mathjax = mathjax_js if "://" in mathjax_js else depth + mathjax_js
        resources = {"metadata": {"name": source.stem}, "dalle_html": {"mathjax_js": mathjax}}
        body, _ = exporter.from_notebook_node(node, resources=resources)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")

    for name, notebook in released.items():
        write(notebook, out / f"{name}.html", "../")
        source_page = None
        if not student:
            write(source_of(name), out / "source" / f"{name}.html", "../../")
            source_page = f"problem-sets/source/{name}.html"
        exported.append(Exported(name, title_of(source_of(name)), f"problem-sets/{name}.html",
                                 f"problem-sets/{name}.ipynb", source_page))
    return exported


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="write the students' notebooks")
    rel.add_argument("--out", default=str(ROOT / "build" / "problem-sets"), help="folder (default build/problem-sets)")
    gra = commands.add_parser("grade", help="autograde a folder of submissions into a CSV")
    gra.add_argument("submissions", help="a folder of <student>.ipynb files (or <student>/<ps>.ipynb)")
    gra.add_argument("--out", default="grades.csv", help="the CSV to write (default grades.csv)")
    gra.add_argument("--problem-set", choices=names(), help="which problem set (default: from the cell ids)")
    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            for name, path in release(Path(args.out)).items():
                print(f"{name}: {path}")
            return 0
        rows = grade(Path(args.submissions), Path(args.out), args.problem_set)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for row in rows:
        print(f"{row['student']}: {row['autograded']:g} / {row['autograded_max']:g} autograded "
              f"(+ {row['written_max']:g} for the written answers, by hand with docs/rubric.md)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
