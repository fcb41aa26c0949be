"""The Makefile's decisions, run with make itself: the browser test skipped for a learner and required
in CI, the inner loop without slow tests or notebooks, the portable notebook run, torch's CPU index."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "DALLE_CHROMIUM", "TORCH_INDEX")}
    environment.update(env or {})
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True,
                          text=True, timeout=60, env=environment)


def test_missing_browser_is_skipped_for_learners_and_required_in_ci(tmp_path):
    missing = tmp_path / "no" / "chromium"
    # APT_GET=false: an install that fails (as without network), also when this runs as root
    learner = make("browser-check", f"CHROMIUM={missing}", "APT_GET=false")
    assert learner.returncode == 0, learner.stderr
    assert "SKIPPED" in learner.stdout and str(missing) in learner.stdout
    ci = make("browser-check", f"CHROMIUM={missing}", "APT_GET=false", env={"CI": "true"})
    assert ci.returncode != 0
    assert "REQUIRED in CI" in ci.stderr and "apt-get install chromium" in ci.stderr
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    present = make("browser-check", env={"CI": "true", "DALLE_CHROMIUM": str(browser)})
    assert present.returncode == 0 and f"runs with {browser}" in present.stdout


def test_browser_fixture_skips_or_fails(tmp_path):
    from tests.browser.conftest import missing_browser

    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        missing_browser(tmp_path / "chromium", ci=False)
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        missing_browser(tmp_path / "chromium", ci=True)


def dry_run(target: str, *settings: str) -> str:
    result = make("-n", target, "APT_GET=false", "CHROMIUM=/nonexistent/chromium", *settings)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_test_targets():
    fast = dry_run("test-fast")
    assert '-m "not slow" tests' in fast and "--nbval" not in fast
    everything = dry_run("test")
    assert "pytest -q tests" in everything and everything.count("--nbval ") == 2
    for target in (fast, everything):  # the lint gate runs first, once
        assert target.count("ruff check .") == 1 and target.index("ruff check .") < target.index("pytest")
    portable = dry_run("test-portable")
    for setting in ("MKL_ENABLE_INSTRUCTIONS=SSE4_2", "DNNL_MAX_CPU_ISA=SSE41", "ATEN_CPU_CAPABILITY=default",
                    "DALLE_CORE_THREADS=2"):
        assert setting in portable
    # strict nbval: two notebooks at a time (one thread each); loadscope keeps a notebook's cells in one kernel
    parallel, serial = dry_run("test-notebooks"), dry_run("test-notebooks", "NOTEBOOK_JOBS=0")
    assert "--nbval" in parallel and "-n 2 --dist loadscope" in parallel
    assert "--nbval" in serial and " -n " not in serial
    assert " -n " not in portable  # its notebooks use two threads each: one at a time


def test_phony_targets_exist():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = next(line for line in text.splitlines() if line.startswith(".PHONY:")).split()[1:]
    for target in phony:
        assert f"\n{target}:" in text, f".PHONY names {target}, which has no rule"


def torch_index(tmp_path: Path, nvidia: bool) -> str:
    bin_dir = tmp_path / ("gpu" if nvidia else "cpu")
    bin_dir.mkdir()
    if nvidia:
        (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    result = make("-s", "--eval", "show-index: ; @echo index=$(TORCH_INDEX)", "show-index", env={"PATH": path})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="the CPU index is chosen on Linux only")
def test_cpu_torch_without_an_nvidia_gpu(tmp_path):
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi on PATH")
    assert torch_index(tmp_path, nvidia=False) == "index=https://download.pytorch.org/whl/cpu"
    assert torch_index(tmp_path, nvidia=True) == "index="


def test_ci_entry_point_requires_the_browser():
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r'CI="\$\{CI:-true\}" make test', run), "CI must run make test with CI set"


def test_the_pins_live_in_constraints_txt():
    """torch's version is written once, in constraints.txt: make installs with it, environment.yml
    repeats it exactly, pyproject.toml's floor admits it, and it is the torch running these tests."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    yaml = pytest.importorskip("yaml")
    from packaging.requirements import Requirement

    pins = dict(re.findall(r"^([\w-]+)==(\S+)", (ROOT / "constraints.txt").read_text(encoding="utf-8"), re.MULTILINE))
    torch_pin = pins["torch"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "torch==" not in makefile and "ruff==" not in makefile
    installs = [line for line in makefile.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert [line for line in pip if line.startswith("torch")] == [f"torch=={torch_pin}"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    for name, pin in pins.items():
        requirement = next(r for r in requirements if r.name == name)
        assert requirement.specifier.contains(pin), f"pyproject.toml's {requirement} excludes constraints.txt's {pin}"
    import torch

    assert torch.__version__.split("+")[0] == torch_pin

