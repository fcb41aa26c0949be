# make lab   opens the course in JupyterLab (token auth, localhost only)
# make test  checks the package and re-executes every notebook (strict nbval)
# make html  exports the course as a static site in site/; make bench measures speed
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8888

.PHONY: lab test test-package test-notebooks bench html clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --port=$(PORT) \
		--IdentityProvider.token="$${JUPYTER_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}"

test: $(STAMP)
	$(BIN)/python -m pytest -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		$(BIN)/python -m pytest -q --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/run.py

html: $(STAMP)
	$(BIN)/python scripts/export_html.py

clean-venv:
	rm -rf $(VENV)
