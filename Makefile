# make lab   opens the course in JupyterLab (token auth, localhost only): Jupyter draws a random token and
#            prints the URL with it (a token given on the command line is printed as "..."); JUPYTER_TOKEN sets one
# make test  checks the package and re-executes every notebook (strict nbval)
# make html  exports the course as a static site in site/; make bench measures speed
# make slides  reveal.js slides of the lecture notebooks in site/slides/ (offline); make docs  regenerates docs/shapes.md and docs/images/
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8888
# tests/browser drives Debian's chromium with Playwright's Python client (no browser download)
CHROMIUM := /usr/bin/chromium
# Jupyter refuses to start as root without --allow-root (CI and containers run as root)
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab test test-package test-notebooks bench html slides docs clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --port=$(PORT) $(ALLOW_ROOT)

# Installed only when missing, from Debian's packages (as root; elsewhere the browser test says what to run).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -q || echo "apt-get update failed; installing from the package lists at hand" >&2; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else \
		echo "$(CHROMIUM) is missing and this is not root: install Debian's chromium (apt-get install chromium)" >&2; \
	fi

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		$(BIN)/python -m pytest -q --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/run.py

html: $(STAMP)
	$(BIN)/python scripts/export_html.py

slides: $(STAMP)
	$(BIN)/python scripts/export_slides.py

docs: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python scripts/shape_cheatsheet.py
	OMP_NUM_THREADS=1 $(BIN)/python docs/figures.py

clean-venv:
	rm -rf $(VENV)
