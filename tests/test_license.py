"""Licences and citation: MIT for the code, CC BY 4.0 for the prose, a valid CITATION.cff, and min-dalle's
notice beside every one of its pictures."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTICE = "min-dalle, © 2022 Brett Kuprel, MIT licence"
PICTURE = re.compile(r"images/min-dalle/[\w.-]+\.(?:jpg|jpeg|png|gif)")


def project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_code_is_mit_in_spdx_form():
    data = project()
    assert data["project"]["license"] == "MIT"  # an SPDX expression; the {text = ...} table is deprecated
    assert data["project"]["license-files"] == ["LICENSE"]
    floor = re.search(r"setuptools>=(\d+)", " ".join(data["build-system"]["requires"]))
    assert floor and int(floor.group(1)) >= 77, "setuptools reads the SPDX `license` and `license-files` from 77 on"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_the_prose_and_notebooks_are_cc_by():
    text = " ".join((ROOT / "LICENSE-docs").read_text(encoding="utf-8").split())  # wrapped lines joined
    assert "Creative Commons Attribution 4.0 International" in text
    assert "https://creativecommons.org/licenses/by/4.0/" in text
    for covered in ("notebooks/", "docs/", "slides/decks/", "problem-sets/"):
        assert covered in text, covered
    assert "notebooks/images/min-dalle/" in text and NOTICE in text


def test_readme_states_both_licences_and_the_citation():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for link in ("](LICENSE)", "](LICENSE-docs)", "](CITATION.cff)"):
        assert link in readme, link
    assert "MIT" in readme and "CC BY 4.0" in readme and NOTICE in readme


def test_citation_cff_is_valid_cff_1_2_0():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    for key in ("cff-version", "message", "title", "authors"):  # the keys CFF 1.2.0 requires
        assert cff.get(key), f"CITATION.cff lacks {key}"
    assert cff["cff-version"] == "1.2.0"
    assert cff["type"] in ("software", "dataset")

    def person_or_entity(author: dict) -> bool:
        return bool(author.get("name") or author.get("family-names") or author.get("given-names"))

    assert isinstance(cff["authors"], list) and all(person_or_entity(a) for a in cff["authors"])
    assert str(cff["version"]) == project()["project"]["version"]
    assert sorted(cff["license"]) == ["CC-BY-4.0", "MIT"]
    titles = set()
    for reference in cff["references"]:
        assert reference["type"] and reference["title"] and reference["authors"], reference
        assert all(person_or_entity(a) for a in reference["authors"])
        titles.add(reference["title"])
    assert {"DALL·E Mini", "min-dalle"} <= titles  # the work the course explains is cited with it


def shown_pictures() -> list[tuple[str, str]]:
    """(where, text around) for every place that shows one of min-dalle's pictures: markdown cells of the
    notebooks and problem sets, deck slides, docs pages and the README."""
    places = []
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")) + sorted((ROOT / "problem-sets").rglob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and PICTURE.search(source):
                places.append((f"{path.relative_to(ROOT)} cell {index}", source))
    sys.path.insert(0, str(ROOT / "scripts"))
    import decks

    for path in decks.deck_paths():
        for index, slide in enumerate(decks.parse(path).slides):
            if PICTURE.search(slide.body):
                places.append((f"{path.relative_to(ROOT)} slide {index + 1}", slide.body))
    for path in sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]:
        for paragraph in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            if re.search(r"!\[[^\]]*\]\([^)]*" + PICTURE.pattern, paragraph):
                places.append((str(path.relative_to(ROOT)), paragraph))
    return places


def test_min_dalles_notice_goes_with_its_pictures():
    places = shown_pictures()
    assert places, "no min-dalle picture is shown anywhere: the notebooks' overview shows them"
    missing = [where for where, text in places if NOTICE not in text]
    assert not missing, f"min-dalle's pictures without the notice {NOTICE!r}: {missing}"
    licence = ROOT / "notebooks" / "images" / "min-dalle" / "LICENSE"
    assert licence.read_text(encoding="utf-8").startswith("Copyright 2022 Brett Kuprel")


def test_every_page_of_the_site_ends_with_the_licences(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import export_common
    import export_html
    from nbconvert import HTMLExporter

    footer = export_common.LICENCE_FOOTER
    assert "MIT" in footer and "CC BY 4.0" in footer and "2022 Brett Kuprel, MIT licence" in footer
    assert footer in export_common.page("A page", "<p>text</p>", None)  # the index and the docs pages
    exporter = HTMLExporter(extra_template_basedirs=[str(export_common.SCRIPTS)],
                            template_name=export_html.TEMPLATE_NAME)
    target = tmp_path / "01_tokenizer.html"
    export_html.export_notebook(ROOT / "notebooks" / "01_tokenizer.ipynb", target, exporter, "mathjax.js", student=True)
    html = target.read_text(encoding="utf-8")
    assert footer in html and html.index(footer) > html.index("</main>")  # below the notebook
