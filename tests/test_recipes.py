"""The classroom recipes (docs/classroom.md) install what the notebooks need: the `course` extra, with the
constraints, from the tag, one thread per student, JupyterLab's settings; and The Littlest JupyterHub's
recipe, run for real into a fresh environment, gives a Python that imports every module every notebook
imports."""
from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TLJH_PIP, TLJH_PYTHON = "/opt/tljh/user/bin/pip", "/opt/tljh/user/bin/python"


# ---- what the notebooks import ------------------------------------------------------------------
def notebook_paths() -> list[Path]:
    return sorted((ROOT / "notebooks").rglob("*.ipynb")) + sorted((ROOT / "problem-sets").rglob("*.ipynb"))


def notebook_imports() -> dict[str, set[str]]:
    """Every module a code cell of a notebook (lecture, solution, problem set) imports -> the notebooks."""
    found: dict[str, set[str]] = {}
    for path in notebook_paths():
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(source, filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    return found


def project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def requirement_names(requirements: list[str]) -> dict[str, str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return {canonicalize_name(Requirement(r).name): r for r in requirements}


def test_the_notebooks_imports_are_found():
    imports = notebook_imports()
    assert {"torch", "matplotlib.pyplot", "dalle_core.lab.notebook", "ipywidgets"} <= set(imports), sorted(imports)
    assert any(name.startswith("min_dalle") for name in imports)


def test_the_course_extra_names_every_library_the_notebooks_import():
    """A module a notebook imports comes from the package's own dependencies or the `course` extra, named
    there directly (not only as some other package's dependency)."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    declared = set(requirement_names(project()["dependencies"] + project()["optional-dependencies"]["course"]))
    distributions = packages_distributions()
    missing = {}
    for name, where in notebook_imports().items():
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "dalle_core":
            continue
        provided = {canonicalize_name(d) for d in distributions.get(top, [])}
        assert provided, f"no installed distribution provides {top!r} (imported by {sorted(where)})"
        if not provided & declared:
            missing[top] = sorted(where)
    assert not missing, f"pyproject.toml's `course` extra lacks what these notebooks import: {missing}"


def test_dev_installs_the_course_extra():
    assert "dalle_core[course]" in project()["optional-dependencies"]["dev"]


def environment_names() -> dict[str, str]:
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    names = {}
    for line in conda + pip:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names[re.split(r"[<>=!~ \[]", line, maxsplit=1)[0].lower().replace("_", "-")] = line
    return names


def test_environment_yml_has_the_course_extra_at_its_pins():
    """Binder and the Zero to JupyterHub image install environment.yml, not the extra: the same packages,
    and an exact pin (==) of the extra is the same pin there; the constraints are read too."""
    names = environment_names()
    for name, requirement in requirement_names(project()["optional-dependencies"]["course"]).items():
        assert name in names, f"environment.yml lacks {requirement} of the `course` extra"
        pin = re.search(r"==\s*(\S+)", requirement)
        if pin:
            assert names[name].replace(" ", "") == f"{name}=={pin.group(1)}", (names[name], requirement)
    assert "nbgitpuller" in names
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s*- -c constraints\.txt", text, re.MULTILINE), "environment.yml must read constraints.txt"


# ---- the recipes, read from docs/classroom.md ---------------------------------------------------
def classroom() -> str:
    return (DOCS / "classroom.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^\s*```{language}\n(.*?)^\s*```", classroom(), re.MULTILINE | re.DOTALL)


def tljh_recipe() -> list[str]:
    """The Littlest JupyterHub's commands, one per line (continuations joined)."""
    block = next(b for b in blocks("bash") if TLJH_PIP in b)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines()
            if line.strip() and not line.strip().startswith("#")]


def start_threads() -> int:
    from dalle_core.lab.notebook import start

    return inspect.signature(start).parameters["threads"].default


def test_the_littlest_jupyterhub_recipe():
    lines = tljh_recipe()
    tag = next(line.split("=", 1)[1] for line in lines if line.startswith("TAG="))
    assert tag and tag.upper() != "HEAD"
    clone = next(line for line in lines if "git clone" in line)
    assert '--branch "$TAG"' in clone, "the hub must install the tag, not the default branch's HEAD"
    installs = [line for line in lines if f"{TLJH_PIP} install" in line]
    assert len(installs) == 2 and all("-c constraints.txt" in line for line in installs), installs
    assert f"--index-url {CPU_INDEX}" in installs[0] and installs[0].split()[-1] == "torch"
    assert "'.[course]'" in installs[1] and "nbgitpuller" in installs[1].split()
    assert any(line.endswith(f"{TLJH_PYTHON} scripts/lab_settings.py") for line in lines)
    assert "sudo tljh-config set limits.cpu 1" in lines


def test_the_hubs_set_one_thread_like_start():
    from traitlets.config import Config

    threads = str(start_threads())
    assert threads == "1"
    line = next(line for line in tljh_recipe() if "jupyterhub_config.d/" in line)
    assert line.split("|")[-1].split()[-1].startswith("/opt/tljh/config/jupyterhub_config.d/")
    config, code = Config(), shlex.split(line.split("|")[0])[1]
    exec(code, {"c": config})  # what The Littlest JupyterHub loads from jupyterhub_config.d
    environment = config.Spawner.environment.get_value({})
    assert environment == {"OMP_NUM_THREADS": threads, "DALLE_CORE_THREADS": threads}

    yaml = pytest.importorskip("yaml")
    singleuser = next(c["singleuser"] for c in map(yaml.safe_load, blocks("yaml")) if isinstance(c, dict))
    assert singleuser["extraEnv"] == {"OMP_NUM_THREADS": threads, "DALLE_CORE_THREADS": threads}


def test_every_recipe_uses_the_same_tag():
    yaml = pytest.importorskip("yaml")
    tag = next(line.split("=", 1)[1] for line in tljh_recipe() if line.startswith("TAG="))
    build = next(b for b in blocks("bash") if "repo2docker" in b)
    assert f"git archive {tag} " in build
    singleuser = next(c["singleuser"] for c in map(yaml.safe_load, blocks("yaml")) if isinstance(c, dict))
    assert singleuser["image"]["tag"] == tag
    binder = re.findall(r"mybinder\.org/v2/gh/OWNER/REPO/([^?/\s]+)\?", classroom())
    assert tag in binder, binder
    links = re.findall(r"git-pull\?[^\n]*?branch=([^&\s]+)", classroom())
    assert links and all(branch != "main" for branch in links), links
    assert re.search(rf"git switch -c {re.escape(links[0])} {re.escape(tag)}", classroom())


def test_the_memory_limit_holds_two_of_the_largest_kernels():
    sys.path.insert(0, str(ROOT / "scripts"))
    import measure_notebooks

    data = measure_notebooks.load()
    need = 2 * max(row["kernel_peak_mib"] for row in data["notebooks"].values()) + data["server"]["server_rss_mib"]
    assert "sudo tljh-config set limits.memory 2G" in tljh_recipe()
    yaml = pytest.importorskip("yaml")
    singleuser = next(c["singleuser"] for c in map(yaml.safe_load, blocks("yaml")) if isinstance(c, dict))
    assert singleuser["memory"]["limit"] == "2G"
    assert need <= 2 * 1024, f"two kernels at their measured peak and the server need {need} MiB: raise the 2G limit"


# ---- the recipe, run ---------------------------------------------------------------------------
def local_torch_wheel(pin: str) -> Path | None:
    """The pinned CPU build of torch where pip's configured find-links already hold it (a mirror)."""
    folders = os.environ.get("PIP_FIND_LINKS", "").split()
    try:
        configured = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.find-links"],
                                    capture_output=True, text=True, timeout=30)
        folders += configured.stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        pass
    for folder in folders:
        folder = folder.removeprefix("file://")
        for wheel in Path(folder).glob(f"torch-{pin}+cpu-*.whl") if Path(folder).is_dir() else []:
            return wheel
    return None


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).close()
        return True
    except OSError:
        return False


NETWORK_TROUBLE = re.compile(r"NewConnectionError|Name or service not known|Temporary failure in name resolution|"
                             r"Network is unreachable|Connection refused|Read timed out|ConnectTimeout")


def run_step(command: list[str], cwd: Path, what: str) -> float:
    start = time.monotonic()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=1800,
                            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
    seconds = time.monotonic() - start
    if result.returncode != 0:
        log = result.stdout[-3000:] + result.stderr[-3000:]
        if NETWORK_TROUBLE.search(log) and not os.environ.get("CI"):
            pytest.skip(f"{what}: the package index could not be reached (set CI to make this a failure):\n{log}")
        pytest.fail(f"{what} failed ({' '.join(command)}):\n{log}", pytrace=False)
    print(f"{what}: {seconds:.0f} s")
    return seconds


def checkout_copy(target: Path) -> Path:
    """The files a clone of this commit holds (tracked, or new and not ignored), as they are now."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


IMPORT_CHECK = """
import importlib, json, sys
from pathlib import Path
names = json.loads(sys.argv[1])
for name in names:
    importlib.import_module(name)
import dalle_core
assert Path(dalle_core.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), dalle_core.__file__
from dalle_core import MinDalle
model = MinDalle(is_verbose=False)  # the course model, from the installed package's files
tokens = model.generate_image_tokens("a red circle on a white background", seed=5, grid_size=1)
print(json.dumps({"imported": len(names), "tokens": list(tokens.shape), "prefix": sys.prefix}))
"""


@pytest.mark.slow  # a fresh environment: about two minutes from a local package mirror
def test_the_tljh_recipe_installs_what_every_notebook_imports(tmp_path):
    pin = re.search(r"^torch==(\S+)", (ROOT / "constraints.txt").read_text(encoding="utf-8"), re.MULTILINE).group(1)
    source = checkout_copy(tmp_path / "dalle-course")  # in place of `git clone --branch "$TAG" ...`
    venv = tmp_path / "user"  # in place of The Littlest JupyterHub's /opt/tljh/user
    started = time.monotonic()
    run_step([sys.executable, "-m", "venv", str(venv)], tmp_path, "python -m venv")
    times = {}
    for line in tljh_recipe():
        if TLJH_PIP not in line and TLJH_PYTHON not in line:
            continue  # git clone, cd, tljh-config: the hub's own business
        words = shlex.split(line.replace("sudo -E ", "").replace("sudo ", ""))
        words[0] = str(venv / "bin" / Path(words[0]).name)
        if words[-1] == "torch" and "--index-url" in words:
            wheel = local_torch_wheel(pin)
            if wheel or not answers(f"{CPU_INDEX}/torch/"):
                at = words.index("--index-url")
                del words[at:at + 2]  # pip's own sources: a mirror holding the same CPU build, as make does
                print(f"torch: {wheel or 'the default index'} in place of {CPU_INDEX}")
        times[" ".join(words[1:4])] = run_step(words, source, " ".join(words[1:]))
    print(f"the recipe: {time.monotonic() - started:.0f} s in all")

    names = sorted(notebook_imports())
    result = subprocess.run([str(venv / "bin" / "python"), "-c", IMPORT_CHECK, json.dumps(names)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"the hub's Python cannot run what the notebooks import:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["imported"] == len(names) and report["tokens"] == [1, 256]
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == f"{pin}+cpu", f"the recipe installed torch {version}, not the CPU build {pin}+cpu"
    check = subprocess.run([str(venv / "bin" / "pip"), "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    settings = json.loads((venv / "share/jupyter/lab/settings/overrides.json").read_text(encoding="utf-8"))
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"

    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink()) / 2**30
    stated = float(re.search(r"extra takes ([\d.]+) GiB", classroom()).group(1))
    print(f"the environment: {size:.2f} GiB (docs/classroom.md says {stated} GiB)")
    assert abs(size - stated) <= 0.25 * stated, f"docs/classroom.md says {stated} GiB; this one takes {size:.2f} GiB"
