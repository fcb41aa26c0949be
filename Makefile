# make lab        opens the course in JupyterLab (token auth, localhost only): Jupyter draws a random token and
#                 prints the URL with it (a token given on the command line is printed as "..."); JUPYTER_TOKEN sets one
# make test       everything: the package's tests (with the browser test where Chromium is present), every notebook
#                 re-executed (strict nbval), and again on portable math-library code paths (test-portable)
# make test-fast  the inner loop: the package's tests not marked slow, no notebooks (under 2 minutes)
# make html       exports the course as a static site in site/ (offline: MathJax copied beside the pages);
# make html-student  the same without solutions, in site-student/ (web pages and slides)
# make slides     reveal.js slides of the lecture notebooks in site/slides/ (offline)
# make docs       regenerates docs/shapes.md and docs/images/; make bench measures speed
# make explorer   builds the course model's browser page (build/explorer/) and serves it on 127.0.0.1, printing
#                 the URL (EXPLORER_PORT, default 8000); make bench-explorer measures it in headless Chromium
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8888
EXPLORER_PORT ?= 8000
NBVAL := -m pytest -q --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks
# Every notebook computes on one thread (lab.notebook.start), so strict nbval runs two notebooks at a
# time to use both cores; --dist loadscope keeps each notebook's cells in order in one kernel (nbval's
# README). NOTEBOOK_JOBS=0 runs them one after another. The portable run keeps one notebook at a time:
# its notebooks use two threads each.
NOTEBOOK_JOBS ?= 2
# tests/browser drives Debian's chromium with Playwright's Python client (no browser download);
# DALLE_CHROMIUM names another Chromium binary (the test reads the same variable)
CHROMIUM := $(or $(DALLE_CHROMIUM),/usr/bin/chromium)
export DALLE_CHROMIUM := $(CHROMIUM)
APT_GET ?= apt-get
# Jupyter refuses to start as root without --allow-root (CI and containers run as root)
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
# Linux without an NVIDIA GPU: PyTorch's CPU wheels (about 200 MB) instead of the default index's CUDA build
# (several GB of CUDA libraries). Set TORCH_INDEX= to use the default index, or another index URL.
TORCH_INDEX ?= $(shell [ "$$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1 && echo https://download.pytorch.org/whl/cpu)
# The math-library code paths of an older or different CPU: MKL at SSE4.2, oneDNN at SSE4.1, ATen's
# vector kernels off, and 2 threads (the notebooks' start() reads DALLE_CORE_THREADS)
PORTABLE_ENV := MKL_ENABLE_INSTRUCTIONS=SSE4_2 DNNL_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default \
	DALLE_CORE_THREADS=2 OMP_NUM_THREADS=2

.PHONY: lab test test-fast test-package test-notebooks test-portable browser-check bench html html-student slides docs clean-venv
.PHONY: explorer bench-explorer

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# the CPU index when it answers within 5 s; else (offline mirrors, closed networks) the default index
	@if [ -n "$(TORCH_INDEX)" ] && $(BIN)/python -c "import urllib.request as r; r.urlopen('$(TORCH_INDEX)/torch/', timeout=5)" 2>/dev/null \
		&& echo "torch: the CPU build from $(TORCH_INDEX)" \
		&& $(BIN)/pip install --quiet -c constraints.txt --index-url $(TORCH_INDEX) torch==2.13.0; then :; \
	else \
		if [ -n "$(TORCH_INDEX)" ]; then echo "torch: $(TORCH_INDEX) did not answer, using the default index"; fi; \
		$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0; \
	fi
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --port=$(PORT) $(ALLOW_ROOT)

# Installed when missing, from Debian's packages, as root. A failed or impossible install (not root, no apt,
# no network) leaves the browser test skipped, unless CI is set: then browser-check stops the run.
$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ] || ! command -v $(firstword $(APT_GET)) >/dev/null 2>&1; then \
		echo "$(CHROMIUM) is missing and cannot be installed here (needs root and apt-get)" >&2; \
	else \
		$(APT_GET) update -q || echo "apt-get update failed; installing from the package lists at hand" >&2; \
		DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -q --no-install-recommends chromium \
			|| echo "installing chromium failed" >&2; \
	fi

browser-check: $(CHROMIUM)
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "browser test: runs with $(CHROMIUM)"; \
	elif [ -n "$$CI" ]; then \
		echo "browser test: REQUIRED in CI (CI=$$CI) but $(CHROMIUM) is missing; install it as root: apt-get install chromium" >&2; \
		exit 1; \
	else \
		echo "browser test: will be SKIPPED ($(CHROMIUM) is missing); every other test runs"; \
	fi

test: test-package test-notebooks test-portable
	@[ -x "$(CHROMIUM)" ] || echo "NOTE: the browser test (tests/browser) was SKIPPED: $(CHROMIUM) is missing. To run it: as root, apt-get install chromium (Debian/Ubuntu), then make test again; or set DALLE_CHROMIUM=/path/to/chromium."

test-package: $(STAMP) browser-check
	$(BIN)/python -m pytest -q tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

test-notebooks: $(STAMP)
	$(BIN)/python $(NBVAL) $(if $(filter-out 0,$(NOTEBOOK_JOBS)),-n $(NOTEBOOK_JOBS) --dist loadscope)

# strict nbval again where the CPU's math libraries take other code paths: outputs must not depend on them
test-portable: $(STAMP)
	$(PORTABLE_ENV) $(BIN)/python $(NBVAL)

bench: $(STAMP)
	$(BIN)/python bench/run.py

html: $(STAMP)
	$(BIN)/python scripts/export_html.py
	$(BIN)/python explorer/build.py --copy-to site/explorer

html-student: $(STAMP)
	$(BIN)/python scripts/export_html.py --student --out site-student
	$(BIN)/python scripts/export_slides.py --student --out site-student/slides

slides: $(STAMP)
	$(BIN)/python scripts/export_slides.py

# the page: ONNX export of the shipped model, onnxruntime-web from npm (installed once into build/npm-vendor/)
explorer: $(STAMP)
	$(BIN)/python explorer/build.py
	$(BIN)/python explorer/serve.py --port $(EXPLORER_PORT)

bench-explorer: $(STAMP)
	$(BIN)/python explorer/build.py --quiet
	$(BIN)/python explorer/bench.py

docs: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python scripts/shape_cheatsheet.py
	OMP_NUM_THREADS=1 $(BIN)/python docs/figures.py

clean-venv:
	rm -rf $(VENV)
