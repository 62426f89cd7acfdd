# One command each: `make demo` (set up, train a small model with mlcheck watching) and
# `make test` (set up, run the test suite). Both build .venv from pyproject.toml and the pinned
# constraints-dev.txt; torch 2.13.0 (CPU) is installed first so pip never picks a CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: venv browser lint lint-check format-check test demo docs bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install "torch==2.13.0" -c constraints-dev.txt
	$(PIP) install -e ".[dev]" -c constraints-dev.txt
	touch $@

# Headless Chromium for the TensorBoard tab's browser test (tests/tensorboard_plugin/test_browser.py):
# Debian's `chromium` package, driven by Playwright from the dev extra pointed at that binary (no
# browser download). Installed when missing as root or under CI=true (~80 s, ~130 packages on a bare
# Debian 12); otherwise the test is skipped and says how to install it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] || [ "$$CI" = true ]; then \
			$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium not found: the TensorBoard tab's browser test will be skipped (apt-get install chromium)"; fi; }

# `make lint` is what a change must pass: ruff's rules and ruff's formatting. `make test` runs the
# rules first (seconds) so a lint error fails before the suite starts.
lint: lint-check format-check

lint-check: venv
	$(VENV)/bin/ruff check .

format-check: venv
	$(VENV)/bin/ruff format --check .

# Keras tests that need to see each batch as concrete arrays: Keras' JAX trainer jit-compiles the
# step, so without run_eagerly=True (or train_data=/validation_data= on the callback) the batch-level
# data checks and the exact per-batch loss are not available there (docs/keras.md); the bitwise test
# reads torch's random state, which JAX does not have; the train-start checks need the first batch.
KERAS_JAX_DESELECT := not (clean_digits_run or input_kind_is_passed or fires_on_injected_bug or \
	overlap_is_found or broken_overfit_check or wrappers_left_by or validation_side_findings or \
	bitwise_identical_weights or missing_nonlinearity_at_train_start)

test: lint browser
	$(PY) -m pytest -n 2 --dist loadgroup -q -rs
	KERAS_BACKEND=jax $(PY) -m pytest -n 2 -q -rs tests/integrations/test_keras.py -k "$(KERAS_JAX_DESELECT)"

demo: venv
	$(PY) examples/demo.py

docs: venv
	$(PY) -m mlcheck.docs docs/checks

bench: venv
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
