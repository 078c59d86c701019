VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

UV_VERSION := 0.13.8
UV := $(VENV)/bin/uv

# uv resolves and installs the dev extra in a fraction of pip's time; pip stays the fallback when uv cannot be
# installed (no wheel for the platform) or fails.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	if $(PY) -m pip install -q uv==$(UV_VERSION) && \
	   $(UV) pip install -q --python $(PY) --excludes scripts/uv-excludes.txt -e ".[dev]"; then :; else \
	  echo "uv unavailable or failed: installing with pip"; \
	  $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e ".[dev]"; \
	fi
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m modelrunner.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Most tests wait on servers they start: test files run on TEST_WORKERS processes (pytest-xdist), a file's
# tests on one worker (its module fixtures start once). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

test: $(STAMP) lint
	test -x /usr/bin/chromium || sh scripts/install_chromium.sh
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
