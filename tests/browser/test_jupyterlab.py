"""The course in a real browser: JupyterLab runs notebook 00 in headless Chromium, and its pictures render.

What a student does on the first day, checked end to end: JupyterLab served as `make lab` serves
it (127.0.0.1, token authentication), notebook 00 opened by URL, outputs cleared (Edit > Clear
Outputs of All Cells), Run > Run All Cells, and then every code cell has an execution count, no
error or stderr output appeared, the picture of the last picture-making cell is a PNG the
browser decoded, and JupyterLab never asked about Jupyter news (the environment's settings say Never).
A full-page screenshot is kept in build/browser/ (docs/images/jupyterlab.png is one such screenshot).
"""
from __future__ import annotations

import re
import sys
import time

import nbformat
import pytest

from .conftest import ARTIFACTS, CHROMIUM_ARGS, NOTEBOOKS

NOTEBOOK = "00_overview.ipynb"
KERNEL = "Python 3 (ipykernel)"  # the notebook's kernelspec, ipykernel's in the venv
NOTIFICATION = "@jupyterlab/apputils-extension:notification"
NEWS_PROMPT = "get notified about official Jupyter news"  # the toast JupyterLab shows while fetchNews is "none"
RUN_TIMEOUT = 120  # seconds for Run All Cells (about 8 s here, 2 cores, one of them busy)
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
CODE_CELLS = f"{PANEL} .jp-Notebook .jp-CodeCell"
STDERR = f'{PANEL} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
# JupyterLab's server messages at level ERROR or CRITICAL ("[E 12:00:00.000 ServerApp] ..."), and tracebacks.
SERVER_ERROR = re.compile(r"^\[[EC] |Traceback \(most recent call last\)|\b(ERROR|CRITICAL)\b", re.MULTILINE)


def code_cells(path) -> list:
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def picture_cells(path) -> list[int]:
    """Positions (among the code cells) of the cells whose committed outputs hold a PNG."""
    return [i for i, cell in enumerate(code_cells(path))
            if any("image/png" in output.get("data", {}) for output in cell.outputs)]


def click_menu(page, menu: str, command: str) -> None:
    """Open a menu of the menu bar and click the item that runs `command` (a JupyterLab command id)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def prompts(page) -> list[str]:
    """The execution-count prompts of the code cells: '[3]:', '[*]:' or '[ ]:'."""
    return [t.strip() for t in page.locator(f"{CODE_CELLS} .jp-InputPrompt").all_text_contents()]


@pytest.mark.slow  # a JupyterLab server and a browser: about a minute
def test_notebook_00_runs_in_jupyterlab(chromium_executable, sync_playwright, jupyterlab, tmp_path):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pictures = picture_cells(NOTEBOOKS / NOTEBOOK)
    assert pictures, f"{NOTEBOOK} has no committed PNG output to look for"
    last_picture = pictures[-1]
    count = len(code_cells(NOTEBOOKS / NOTEBOOK))

    # The environment's settings (scripts/lab_settings.py, run by make) answer the news question: Never.
    notification = jupyterlab.get_json(f"lab/api/settings/{NOTIFICATION}")
    assert notification["schema"]["properties"]["fetchNews"]["default"] == "false", (
        f"{sys.prefix} has no JupyterLab settings for the course: run `make` or `python scripts/lab_settings.py`")

    # Token authentication is on: the REST API refuses a request without the token.
    assert jupyterlab.get("api/contents", token=False) == 403, "JupyterLab answered without its token"
    assert jupyterlab.get("api/contents") == 200

    outside_requests, page_errors, console_errors = [], [], []
    screenshot = ARTIFACTS / "jupyterlab.png"
    screenshot.unlink(missing_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a new, empty profile
            executable_path=str(chromium_executable), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, device_scale_factor=1,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()

            def only_local(route):
                if route.request.url.startswith(jupyterlab.url) or route.request.url.startswith("data:"):
                    route.continue_()
                else:
                    outside_requests.append(route.request.url)
                    route.abort()

            context.route("**/*", only_local)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
            try:
                page.goto(f"{jupyterlab.url}lab/tree/{NOTEBOOK}?token={jupyterlab.token}", wait_until="load")
                # The kernel has started (its name is in the toolbar) and is idle; every code cell is attached.
                page.locator(f"{PANEL} .jp-Toolbar-kernelName", has_text=KERNEL).wait_for(timeout=60_000)
                page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=60_000)
                page.wait_for_function("([selector, n]) => document.querySelectorAll(selector).length === n",
                                       arg=[CODE_CELLS, count], timeout=30_000)

                # Clear the committed outputs first, so that what is rendered afterwards is this run's; show the
                # code of the check cells (collapsed for students), whose prompts are empty while collapsed.
                page.locator(f"{PANEL} .jp-Notebook").click(position={"x": 5, "y": 5})
                click_menu(page, "View", "notebook:show-all-cell-code")  # View > Expand All Code
                click_menu(page, "Edit", "editmenu:clear-all")  # Edit > Clear Outputs of All Cells
                page.wait_for_function(
                    """selector => document.querySelectorAll(selector).length === 0""",
                    arg=f"{PANEL} .jp-OutputArea-output", timeout=10_000)
                assert set(prompts(page)) == {"[ ]:"}, prompts(page)

                start = time.monotonic()
                click_menu(page, "Run", "runmenu:run-all")  # Run > Run All Cells
                # Done when the kernel is idle with no cell queued or running, and every cell has its count
                # (or an error output stopped the run: the remaining cells keep an empty prompt).
                try:
                    page.wait_for_function(
                        """([cells, indicator, stderr]) => {
                            const prompts = [...document.querySelectorAll(cells + ' .jp-InputPrompt')]
                                .map(p => p.textContent.trim());
                            const idle = document.querySelector(indicator + "[data-status='idle']") !== null;
                            if (!idle || prompts.length === 0 || prompts.includes('[*]:')) return false;
                            return prompts.every(p => /^\\[\\d+\\]:$/.test(p))
                                || document.querySelector(stderr) !== null;
                        }""",
                        arg=[CODE_CELLS, f"{PANEL} .jp-Notebook-ExecutionIndicator", STDERR],
                        timeout=RUN_TIMEOUT * 1000,
                        polling=250,
                    )
                except PlaywrightTimeout:
                    status = page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator").get_attribute("data-status")
                    pytest.fail(
                        f"Run All Cells did not finish within {RUN_TIMEOUT} s: kernel {status!r}, "
                        f"prompts {prompts(page)}",
                        pytrace=False,
                    )
                run_seconds = time.monotonic() - start
                errors = page.locator(STDERR).all_text_contents()
                assert not errors, "error or stderr output in the notebook:\n" + "\n---\n".join(
                    e[:2000] for e in errors
                )
                counts = [int(p.strip("[]:")) if p != "[ ]:" else None for p in prompts(page)]
                assert counts == list(range(1, count + 1)), f"not run top to bottom in a fresh kernel: {counts}"

                # The picture of the last picture-making cell: a PNG the browser decoded.
                cell = page.locator(CODE_CELLS).nth(last_picture)
                cell.scroll_into_view_if_needed()
                image = cell.locator(".jp-OutputArea-output img").last
                image.wait_for(timeout=10_000)
                page.wait_for_function(
                    "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=10_000
                )
                source, width, height = image.evaluate(
                    "img => [img.src.slice(0, 22), img.naturalWidth, img.naturalHeight]"
                )
                assert source == "data:image/png;base64,", source
                assert width > 0 and height > 0
                rendered = page.locator(f'{PANEL} .jp-OutputArea-output[data-mime-type="image/png"] img').count()
                assert rendered == len(pictures), f"{rendered} PNG outputs rendered, the notebook makes {len(pictures)}"

                # Still no error output after the pictures, and no dialog (kernel died, save failed...).
                errors = page.locator(STDERR).all_text_contents()
                assert not errors, "error or stderr output in the notebook:\n" + "\n---\n".join(
                    e[:2000] for e in errors
                )
                assert page.locator(".jp-Dialog").count() == 0, page.locator(".jp-Dialog").all_inner_texts()
                # The announcements plugin asks right after JupyterLab is restored, long before this point.
                assert page.get_by_text(NEWS_PROMPT).count() == 0, "JupyterLab asked about Jupyter news"
            finally:
                try:
                    page.screenshot(path=str(screenshot), full_page=True)  # also of a failure, to see it
                except PlaywrightError as error:
                    print(f"no screenshot: {error}")  # the test's own failure is the one to report
        finally:
            context.close()

    assert not page_errors, f"uncaught errors in the page: {page_errors}"
    assert not console_errors, f"errors in the browser console: {console_errors}"
    assert not outside_requests, f"the page asked for something outside the server: {outside_requests}"
    assert screenshot.stat().st_size > 10_000

    jupyterlab.stop()  # POST /api/shutdown: the kernel is shut down, the server exits by itself
    assert jupyterlab.process.returncode == 0, f"jupyter lab exited with {jupyterlab.process.returncode}"
    log = jupyterlab.log()
    assert not SERVER_ERROR.search(log), f"JupyterLab logged an error (run took {run_seconds:.1f} s):\n{log[-4000:]}"
    print(f"Run All Cells: {run_seconds:.1f} s; screenshot: {screenshot}")
