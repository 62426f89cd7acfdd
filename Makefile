# One command each: `make demo` (set up, train a small model with mlcheck watching) and
# `make test` (set up, run the test suite). Both build .venv from pyproject.toml and the pinned
# constraints-dev.txt; torch 2.13.0 (CPU) is installed first so pip never picks a CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: venv lint lint-check format-check test demo docs bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install "torch==2.13.0" -c constraints-dev.txt
	$(PIP) install -e ".[dev]" -c constraints-dev.txt
	touch $@

# `make lint` is what a change must pass: ruff's rules and ruff's formatting. `make test` runs the
# rules first (seconds) so a lint error fails before the suite starts.
lint: lint-check format-check

lint-check: venv
	$(VENV)/bin/ruff check .

format-check: venv
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -n 2 --dist loadgroup -q -rs

demo: venv
	$(PY) examples/demo.py

docs: venv
	$(PY) -m mlcheck.docs docs/checks

bench: venv
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
