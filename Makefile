# proxystore workspace. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
PYTHON ?= python3
# uv is installed through pip when it is missing; `python -m uv` works either way.
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen
# The docs group (mkdocs, Material, mkdocstrings) is installed by `make docs` only. The builder is one line: Zensical reads the same mkdocs.yml, so
# `DOCS_BUILD := zensical build --strict` (with zensical in the docs group) switches it.
DOCS_RUN := $(UV) run --frozen --all-packages --group docs
DOCS_BUILD := mkdocs build --strict
DOCS_ADDR ?= 127.0.0.1:8000
SHOTS_DIR ?= build/docs-shots
PYTEST_NO_TESTS_OK := rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

.PHONY: help ensure-uv install demo test test-integration lint format typecheck bench check clean

help: ## Show this help.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

ensure-uv:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet uv

install: ensure-uv ## Create .venv with every workspace package and the dev tools.
	$(UV) sync --frozen --all-packages

demo: install ## Run the demo on the embedded default (a FileConnector; no server).
	$(RUN) python scripts/demo.py

test: install ## Unit and property tests (parallel).
	$(RUN) pytest -n auto; $(PYTEST_NO_TESTS_OK)

# Not `install`: its exact sync would remove the ucx group (ucxx, ~300 MB) again.
# `uv run` syncs inexactly, so it leaves the group in place.
test-integration: ensure-uv ## Integration tests against real servers (adds the ucx group).
	$(UV) sync --frozen --all-packages --group ucx
	$(RUN) pytest tests/integration -n auto -p no:cacheprovider -v; $(PYTEST_NO_TESTS_OK)

lint: install ## ruff check + format check.
	$(RUN) ruff check packages tests scripts examples conftest.py
	$(RUN) ruff format --check packages tests scripts examples conftest.py

format: install ## Apply ruff formatting and autofixes.
	$(RUN) ruff check --fix packages tests scripts examples conftest.py
	$(RUN) ruff format packages tests scripts examples conftest.py

typecheck: install ## mypy --strict over packages/, tests/ and scripts/.
	$(RUN) mypy packages/*/src tests scripts examples conftest.py
	@set -e; for d in packages/*/tests; do \
		if compgen -G "$$d/*.py" >/dev/null; then \
			echo "mypy $$d"; MYPYPATH=$$d $(RUN) mypy $$d; fi; done

bench: install ## Run every benchmark (creates .bench-venv/ with the reference release).
	@set -eo pipefail; mkdir -p docs/figures/data; for f in scripts/bench/[a-z]*.py; do \
		m=$${f%.py}; n=$${m##*/}; [ "$$n" = charts ] && continue; echo "== $$m"; \
		$(RUN) python -m $${m//\//.} --json | tee docs/figures/data/$$n.json; done
	$(RUN) python -m scripts.bench.charts

check: lint typecheck test ## lint + typecheck + test.

clean: ## Remove caches and build output.
	rm -rf .mypy_cache .ruff_cache .pytest_cache build dist

.PHONY: docs docs-serve docs-screenshots

docs: ensure-uv ## Build the docs site strictly into site/ (broken links, missing API objects fail).
	$(UV) sync --frozen --all-packages --group docs
	$(DOCS_RUN) python -m scripts.docs.gen_api
	$(DOCS_RUN) python -m scripts.docs.gen_cli
	$(DOCS_RUN) python -m scripts.docs.security_policy
	PYTHONPATH="$$($(DOCS_RUN) python -m scripts.docs.gen_api --pythonpath)" \
		NO_MKDOCS_2_WARNING=1 $(DOCS_RUN) $(DOCS_BUILD)
	@echo "site built into site/: browse it with 'make docs-serve' (search needs http://)"

docs-serve: ensure-uv ## Serve the docs with live reload on http://127.0.0.1:8000 (DOCS_ADDR=host:port).
	$(UV) sync --frozen --all-packages --group docs
	$(DOCS_RUN) python -m scripts.docs.gen_api
	$(DOCS_RUN) python -m scripts.docs.gen_cli
	$(DOCS_RUN) python -m scripts.docs.security_policy
	PYTHONPATH="$$($(DOCS_RUN) python -m scripts.docs.gen_api --pythonpath)" \
		NO_MKDOCS_2_WARNING=1 $(DOCS_RUN) mkdocs serve --dev-addr $(DOCS_ADDR)

docs-screenshots: docs ## Screenshot key pages of site/ with headless Chromium (installs Debian's chromium if missing).
	scripts/docs/screenshots.sh $(SHOTS_DIR)
