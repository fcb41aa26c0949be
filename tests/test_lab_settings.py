"""JupyterLab opens the course without asking about Jupyter news: scripts/lab_settings.py writes the setting
into an environment's overrides.json, and make (for `make lab` and `make test`), repo2docker (postBuild)
and The Littlest JupyterHub recipe run it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import lab_settings  # noqa: E402

NEWS = {"fetchNews": "false", "checkForUpdates": False}


def overrides(prefix: Path) -> dict:
    return json.loads((prefix / lab_settings.RELATIVE).read_text(encoding="utf-8"))


def test_the_setting_is_written_and_other_settings_are_kept(tmp_path):
    target = tmp_path / lab_settings.RELATIVE
    target.parent.mkdir(parents=True)
    hub = {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
           lab_settings.PLUGIN: {"doNotDisturbMode": True, "fetchNews": "none"}}
    target.write_text(json.dumps(hub), encoding="utf-8")
    assert lab_settings.main(["--prefix", str(tmp_path)]) == 0
    written = overrides(tmp_path)
    assert written["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert written[lab_settings.PLUGIN] == {"doNotDisturbMode": True, **NEWS}
    assert lab_settings.main(["--prefix", str(tmp_path)]) == 0 and overrides(tmp_path) == written  # idempotent
    assert not list(target.parent.glob("*.part"))


def test_bad_input_is_named(tmp_path, capsys):
    assert lab_settings.main(["--prefix", str(tmp_path / "missing")]) == 1
    assert "no environment at" in capsys.readouterr().err
    target = tmp_path / lab_settings.RELATIVE
    target.parent.mkdir(parents=True)
    target.write_text("{not json", encoding="utf-8")
    assert lab_settings.main(["--prefix", str(tmp_path)]) == 1
    assert "is not JSON" in capsys.readouterr().err and target.read_text() == "{not json"  # left as it was


def test_the_installed_jupyterlab_knows_the_setting():
    """The schema of the JupyterLab in this environment takes fetchNews "false" (Never)."""
    schema = Path(sys.prefix) / lab_settings.SCHEMA
    if not schema.is_file():
        pytest.skip(f"JupyterLab is not installed in {sys.prefix}")
    lab_settings.allowed(Path(sys.prefix))  # raises when the setting or its value is unknown
    properties = json.loads(schema.read_text(encoding="utf-8"))["properties"]
    assert {"const": "false", "title": "Never"} in properties["fetchNews"]["oneOf"]


def test_a_renamed_setting_stops_the_script(tmp_path, capsys):
    schema = tmp_path / lab_settings.SCHEMA
    schema.parent.mkdir(parents=True)
    schema.write_text(json.dumps({"properties": {"checkForUpdates": {"type": "boolean"}}}), encoding="utf-8")
    assert lab_settings.main(["--prefix", str(tmp_path)]) == 1
    assert "has no setting 'fetchNews'" in capsys.readouterr().err
    assert not (tmp_path / lab_settings.RELATIVE).exists()


def fake_venv(tmp_path: Path) -> Path:
    """A folder make takes for an installed .venv: bin/python, and a stamp newer than its prerequisites."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    stamp = venv / ".installed"
    stamp.touch()
    newest = max([(ROOT / name).stat().st_mtime for name in ("pyproject.toml", "constraints.txt")] + [time.time()])
    os.utime(stamp, (newest, newest))  # not older than its prerequisites, not newer than what make writes next
    return venv


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_lab_installs_the_settings_first(tmp_path):
    venv = fake_venv(tmp_path)
    dry = subprocess.run(["make", "-n", "lab", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    settings = next(i for i, line in enumerate(lines) if "scripts/lab_settings.py" in line)
    assert settings < next(i for i, line in enumerate(lines) if "jupyter lab" in line)
    target = venv / lab_settings.RELATIVE
    done = subprocess.run(["make", str(target), f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert overrides(venv)[lab_settings.PLUGIN] == NEWS
    dry = subprocess.run(["make", "-n", "test-package", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True)
    assert "scripts/lab_settings.py" not in dry.stdout  # installed: make test does not redo it


def test_repo2docker_runs_the_script_in_postbuild():
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs ./postBuild (it also chmods it, a clone keeps the bit)"
    text = post_build.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash") and "set -euo pipefail" in text
    assert "\npython scripts/lab_settings.py\n" in text  # the notebook environment's python: its sys.prefix
    assert subprocess.run(["bash", "-n", str(post_build)]).returncode == 0
