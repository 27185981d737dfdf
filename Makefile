# Entry points. Each target installs what it needs first (idempotent), so on a fresh Debian 12
# machine as root `make test` and `make demo` work straight after a clone.
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: deps lint test test-unit test-integration test-vm demo bench bench-kernel clean

deps:
	VENV=$(VENV) bash scripts/install-deps

# Layer contracts (import-linter, pyproject.toml), ruff, mypy; the first step of `make test`.
lint: deps
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check ovnbgp tests bench
	$(VENV)/bin/mypy ovnbgp

# Lint first; then unit and integration tests on the host while the vm tier runs in two
# User-Mode Linux guests (tests/vm/runner.py); every line tagged with where it comes from, the
# last one counts them all.
test: deps lint
	OVNBGP_VM_HOST_TESTS="tests/unit tests/integration" $(PY) -m tests.vm.runner

test-unit: deps
	$(PYTEST) tests/unit

test-integration: deps
	$(PYTEST) tests/integration

test-vm: deps
	$(PY) -m tests.vm.runner

# The one-machine lab end to end (tests/lab/demo.py): User-Mode Linux when this kernel lacks
# vrf/dummy, natively otherwise; exits non-zero if a step fails; tears everything down.
demo: deps
	$(PY) -m tests.lab.demo

# Kernel reconciler vs ip -batch at 1k/10k exposures, both steering modes (boots UML; ~2-3 min).
bench-kernel: deps
	$(PY) bench/bench_kernel.py

# Every benchmark, one table (bench/run.py): model, kernel vs ip -batch, the whole agent vs its
# floors at 1k, 10k and 100k (100k in steering=table, without FRR's end points; boots UML, a
# 12 GB guest at 100k), and cloud size natively (the agent's start CPU / peak RSS / bytes from a
# Southbound of 1k/10k/100k Port_Bindings vs ovsdb-client and the whole-table reader, remote
# events; ~6 min). About an hour on 2 cores. BENCH_SIZES=1000,10000 leaves 100k out,
# BENCH_SIZES=1000 for a quick run; BENCH_CLOUD_SIZES for the cloud step. Results in
# bench/results/ (not tracked). Not part of `make test`.
bench: deps
	$(PY) bench/run.py

clean:
	rm -rf .pytest_cache .hypothesis .mypy_cache .ruff_cache .import_linter_cache build *.egg-info
