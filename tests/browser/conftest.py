"""A JupyterLab server and a headless Chromium for the real-browser test of the course.

The server: the venv's `jupyter lab` on 127.0.0.1 (a port the OS picks), token authentication
with a random token, a temporary copy of notebooks/ as its root, and Jupyter / IPython config,
data and runtime folders of its own, so that nothing of the user's setup leaks in and nothing
is written to the repository. It makes no request to the internet: no news feed, no update
check, no extension manager listing PyPI. The browser: Debian's /usr/bin/chromium driven by
Playwright's Python client (Playwright's own browser download is never used).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "build" / "browser"  # screenshots and the server log (build/ is gitignored)
CHROMIUM = Path(os.environ.get("DALLE_CHROMIUM", "/usr/bin/chromium"))
# What the machine's closed network needs: no background requests to Google's hosts, no QUIC.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # The server is addressed by IP: no host name needs resolving, and Chromium's own look-ups of
    # Google's hosts (accounts.google.com, seen with strace) fail at once instead of asking the DNS.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
START_TIMEOUT = 60  # seconds for JupyterLab to answer /api/status


def missing_browser(path: Path, ci: bool) -> None:
    """No Chromium at `path`: a failure in CI (where `make test` installs it), else a skip that
    says how to enable the test, so that a learner's `make test` tests everything else."""
    how = ("as root, `apt-get install -y --no-install-recommends chromium` (Debian/Ubuntu; `make test` "
           "does it when run as root), or set DALLE_CHROMIUM to another Chromium binary")
    if ci:
        pytest.fail(f"{path} is missing and CI is set: the browser test is required in CI. Install it: {how}.",
                    pytrace=False)
    pytest.skip(f"browser test skipped: {path} is missing. To enable it: {how}.")


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Debian's chromium; when missing, a skip with the fix in the message (a failure in CI)."""
    if not os.access(CHROMIUM, os.X_OK):
        missing_browser(CHROMIUM, ci=bool(os.environ.get("CI")))
    return CHROMIUM


@pytest.fixture(scope="session")
def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.fail(f"the Playwright Python client is missing ({error}): `make test` installs it "
                    "(pip install -e '.[dev]'); no browser download is needed.", pytrace=False)
    return sync_playwright


@dataclass
class JupyterLab:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT/
    token: str
    root_dir: Path
    log_path: Path
    stopped: bool = field(default=False)

    def get(self, path: str, token: bool = True) -> int:
        """The HTTP status of GET url/path, with or without the token."""
        request = urllib.request.Request(self.url + path.lstrip("/"))
        if token:
            request.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def get_json(self, path: str) -> dict:
        """GET url/path with the token, decoded."""
        request = urllib.request.Request(self.url + path.lstrip("/"), headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """POST /api/shutdown (the server shuts its kernels down), then SIGTERM / SIGKILL its process group."""
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            request = urllib.request.Request(self.url + "api/shutdown", method="POST",
                                             headers={"Authorization": f"token {self.token}"})
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=5).close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        # The server runs in a session of its own: end whatever is left of it. (Its kernels run in sessions
        # of their own and shut down with it, or exit by themselves when it is gone: ipykernel's parent poller.)
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            time.sleep(0.2)  # let the kernels the server was ending exit before the next signal


def jupyter_command() -> list[str]:
    """The `jupyter lab` of the interpreter running the tests (the venv's)."""
    script = Path(sys.executable).with_name("jupyter")
    return [str(script), "lab"] if script.exists() else [sys.executable, "-m", "jupyterlab"]


def write_config(home: Path, root_dir: Path) -> None:
    """A clean Jupyter config folder with the server settings. The news prompt is left to the environment's
    own settings (overrides.json, written by scripts/lab_settings.py), as a student meets it."""
    config = home / "config"
    (config / "labconfig").mkdir(parents=True)
    server = {
        "ServerApp": {"ip": "127.0.0.1", "port": 0, "port_retries": 0, "open_browser": False,
                      "root_dir": str(root_dir), "allow_root": os.geteuid() == 0},  # CI here runs as root
        "LabApp": {
            "news_url": None,  # no Atom feed fetched from jupyterlab.github.io
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",  # no query to pypi.org
            "extension_manager": "readonly",  # the extension manager lists what is installed, asks no index
        },
    }
    (config / "jupyter_server_config.json").write_text(json.dumps(server, indent=1))


def server_env(home: Path, token: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JUPYTER", "JPY_")) and key not in ("IPYTHONDIR", "MPLBACKEND")}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "config" / "lab" / "user-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "data" / "lab" / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTER_TOKEN=token,  # the token stays out of the process list
        OMP_NUM_THREADS="1",  # the kernel inherits it; the notebooks also call torch.set_num_threads(1)
        MKL_NUM_THREADS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",  # debugpy's frozen-modules note on every kernel start
    )
    return env


def server_info(runtime: Path, pid: int) -> dict | None:
    """The jpserver-PID.json the server writes once it listens: its URL and port."""
    path = runtime / f"jpserver-{pid}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@pytest.fixture()
def jupyterlab(tmp_path) -> JupyterLab:
    """A running JupyterLab serving a copy of notebooks/; shut down when the test ends, passed or failed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "jupyter"
    root_dir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    write_config(home, root_dir)
    token = secrets.token_hex(24)
    log_path = ARTIFACTS / "jupyterlab.log"
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            jupyter_command(), cwd=root_dir, env=server_env(home, token), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = JupyterLab(process, "", token, root_dir, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {process.returncode} before it served:\n{server.log()[-3000:]}",
                            pytrace=False)
            info = server_info(home / "runtime", process.pid)
            if info:
                server.url = f"http://127.0.0.1:{info['port']}/"
                try:
                    if server.get("api/status") == 200:
                        break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within {START_TIMEOUT} s:\n{server.log()[-3000:]}",
                            pytrace=False)
            time.sleep(0.2)
        yield server
    finally:
        server.stop()
