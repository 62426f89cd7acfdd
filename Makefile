# One command each: `make demo` (set up, train a small model with mlcheck watching) and
# `make test` (set up, run the test suite). Both build .venv from pyproject.toml and the pinned
# constraints-dev.txt; torch 2.13.0 (CPU) is installed first so pip never picks a CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: venv venv-tf browser lint lint-check format-check test test-jax test-tf demo docs bench clean

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

# Keras on its other backends: tests/integrations/test_keras.py runs again under JAX (jax[cpu] is in
# the dev extra) and under TensorFlow, in a virtual environment of its own (.venv-tf: tensorflow-cpu
# is large and must not become a requirement; the Keras tests need no torch). Measured on a shared
# 2-core machine under a load of ~10 (docs/keras.md): the install 77-138 s, the test run 320 s wall,
# 138 s of CPU, so some 3 minutes together on 2 free cores; CI's budget is 90 minutes.
VENV_TF ?= .venv-tf
PY_TF := $(VENV_TF)/bin/python

venv-tf: $(VENV_TF)/.installed

$(VENV_TF)/.installed: pyproject.toml constraints-tf.txt
	$(PYTHON) -m venv $(VENV_TF)
	$(PY_TF) -m pip --disable-pip-version-check -q install "tensorflow-cpu==2.21.0" -e . keras pytest \
		pytest-xdist pytest-timeout scikit-learn -c constraints-tf.txt
	touch $@

test-jax: venv
	KERAS_BACKEND=jax $(PY) -m pytest -n 2 -q -rs tests/integrations/test_keras.py

test-tf: venv-tf
	KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2 $(PY_TF) -m pytest -n 2 -q -rs tests/integrations/test_keras.py

test: lint browser
	$(PY) -m pytest -n 2 --dist loadgroup -q -rs
	$(MAKE) test-jax test-tf

demo: venv
	$(PY) examples/demo.py

docs: venv
	$(PY) -m mlcheck.docs docs/checks

bench: venv
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(VENV_TF) build *.egg-info .pytest_cache
