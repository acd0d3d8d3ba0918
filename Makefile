# The two README commands are `make demo` and `make test`; both set everything up first.
VENV ?= .venv
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(VIRTUAL_ENV)/bin:$(PATH)

.PHONY: setup demo test lint format bench colcon-check

setup:
	bash scripts/setup.sh

demo: setup
	fm-match --demo --out-dir out/demo

lint: setup
	ruff check .
	ruff format --check .

# Passive OpenMP waiting keeps torch from spinning against the DDS and test subprocesses on 2 cores.
test: lint
	OMP_WAIT_POLICY=PASSIVE python -m pytest

format:
	ruff format .
	ruff check --fix .

bench: setup
	fm-bench --out out/bench.json

colcon-check: setup
	bash scripts/colcon_check.sh
