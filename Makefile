VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean demo-drift

UV_VERSION := 0.13.8
UV := $(VENV)/bin/uv

# uv resolves and installs the dev extra in a fraction of pip's time (--compile-bytecode: without .pyc files every
# server process and test subprocess compiled scikit-learn, SciPy and pandas again, ~3 s CPU each, where
# PYTHONDONTWRITEBYTECODE is set); pip stays the fallback when uv cannot be
# installed (no wheel for the platform) or fails.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	if $(PY) -m pip install -q uv==$(UV_VERSION) && \
	   $(UV) pip install -q --compile-bytecode --python $(PY) --excludes scripts/uv-excludes.txt -e ".[dev]"; then :; else \
	  echo "uv unavailable or failed: installing with pip"; \
	  $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e ".[dev]"; \
	fi
	# torch with pip only: it takes the CPU build (uv would fetch a multi-GB CUDA one)
	$(PY) -m pip install -q torch==2.13.0
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m modelrunner.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/ruff format --check src tests examples bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Most tests wait on servers they start: `make test TEST_WORKERS=2` runs the test files on 2 processes
# (pytest-xdist), a file's tests on one worker (its module fixtures start once). 0 (the default until two full
# parallel runs pass on an idle machine): in this process.
TEST_WORKERS ?= 2

test: $(STAMP) lint
	test -x /usr/bin/chromium || sh scripts/install_chromium.sh
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30

demo-drift: $(STAMP)
	$(PY) examples/drift/run.py --plot build/drift-demo.png

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
