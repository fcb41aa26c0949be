# make lab        opens the course in JupyterLab (token auth, localhost only): Jupyter draws a random token and
#                 prints the URL with it (a token given on the command line is printed as "..."); JUPYTER_TOKEN sets one;
#                 JupyterLab's settings for the course (no "Jupyter news?" prompt) go into .venv first (scripts/lab_settings.py)
# make test       everything: the lint gate, the package's tests (with the browser test where Chromium is present), every notebook
#                 re-executed (strict nbval), and again on portable math-library code paths (test-portable)
# make test-fast  the inner loop: the lint gate and the package's tests not marked slow, no notebooks (under 2 minutes)
# make lint       ruff check . (rules in pyproject.toml); make test and make test-fast run it first
# make html       exports the course as a static site in site/ (offline: MathJax copied beside the pages);
# make html-student  the same without solutions, in site-student/ (web pages and slides)
# make slides     the four lecture decks (slides/decks/*.md) and reveal.js slides of the lecture notebooks in
#                 site/slides/ (offline); the decks' figures are taken from the notebooks' stored outputs
# make grade SUBMISSIONS=dir   autogrades a folder of problem-set submissions (<student>.ipynb) into grades.csv
# make problem-sets  writes the students' copies of the problem sets into build/problem-sets/
# make docs       regenerates docs/shapes.md and docs/images/; make bench measures speed
# make explorer   builds the course model's browser page (build/explorer/) and serves it on 127.0.0.1, printing
#                 the URL (EXPLORER_PORT, default 8000); make bench-explorer measures it in headless Chromium
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# JupyterLab's settings for the course (no "Jupyter news?" prompt): scripts/lab_settings.py writes them
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
PORT ?= 8888
EXPLORER_PORT ?= 8000
NBVAL := -m pytest -q --nbval --nbval-sanitize-with tests/nbval-sanitize.cfg notebooks
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

.PHONY: lab lint test test-fast test-package test-notebooks test-portable browser-check bench html html-student slides docs clean-venv
.PHONY: grade problem-sets vendor
.PHONY: explorer bench-explorer

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# the CPU index when it answers within 5 s; else (offline mirrors, closed networks) the default index
	@if [ -n "$(TORCH_INDEX)" ] && $(BIN)/python -c "import urllib.request as r; r.urlopen('$(TORCH_INDEX)/torch/', timeout=5)" 2>/dev/null \
		&& echo "torch: the CPU build from $(TORCH_INDEX)" \
		&& $(BIN)/pip install --quiet -c constraints.txt --index-url $(TORCH_INDEX) torch; then :; \
	else \
		if [ -n "$(TORCH_INDEX)" ]; then echo "torch: $(TORCH_INDEX) did not answer, using the default index"; fi; \
		$(BIN)/pip install --quiet -c constraints.txt torch; \
	fi
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,grading]'
	@# nbgrader's JupyterLab menus and server extensions are for a grading hub; here grading runs from `make grade`
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1
	for extension in formgrader validate_assignment assignment_list course_list; do \
		$(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$extension >/dev/null 2>&1; done
	touch $(STAMP)

$(LAB_SETTINGS): $(STAMP) scripts/lab_settings.py
	$(BIN)/python scripts/lab_settings.py --prefix $(VENV)

lab: $(STAMP) $(LAB_SETTINGS)
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

lint: $(STAMP)
	$(BIN)/ruff check .

test-package: $(STAMP) $(LAB_SETTINGS) browser-check lint vendor
	$(BIN)/python -m pytest -q tests

test-fast: $(STAMP) lint
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
	$(BIN)/python explorer/build.py --copy-to site-student/explorer

slides: $(STAMP)
	$(BIN)/python scripts/export_slides.py

# reveal.js and MathJax from npm into build/npm-vendor/, once (the exports and the decks' browser test use them);
# where npm or its registry is missing, the pages fall back to CDNs and the decks' test is skipped (failed in CI)
vendor: $(STAMP)
	@$(BIN)/python scripts/export_common.py || echo "vendor: the lecture decks' browser test will be skipped" >&2

GRADES ?= grades.csv
grade: $(STAMP)
	@[ -n "$(SUBMISSIONS)" ] || { echo "usage: make grade SUBMISSIONS=folder-of-submissions [GRADES=grades.csv]" >&2; exit 2; }
	$(BIN)/python scripts/problem_sets.py grade $(SUBMISSIONS) --out $(GRADES)

problem-sets: $(STAMP)
	$(BIN)/python scripts/problem_sets.py release --out build/problem-sets

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
