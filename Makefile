# backprop-bench: `make bench` and `make test` do all set-up on a fresh machine.
#
#   make test                 # create .venv if missing, install, run the whole test suite
#   make bench                # same set-up, run the default profile, write results/<run>/report.md
#   make bench PROFILE=quick  # other profiles: quick, default, full, gpu; scaling (data-parallel W = 1, 2)
#   make check                # gradient and trajectory agreement report
#   make notebook             # re-execute docs/teaching.ipynb (from docs/teaching.py) in place; RUN=folder: that run
#   make gpu-smoke PY=python3 # on the GPU machine, first: every GPU code path once, pass/FAIL (<90 s)
#   make gpu PY=python3       # on the GPU machine: check on every device, gpu profile, report (<6 min)
#
# PY=python3 uses an interpreter that already has the dependencies (the GPU
# machine, where nothing can be installed): no venv is created, nothing installed.

BASE_PYTHON ?= python3
VENV        ?= .venv
PROFILE     ?= default
ARGS        ?=

ifdef PY
PYTHON := $(PY)
SETUP  :=
else
PYTHON := $(VENV)/bin/python
SETUP  := $(VENV)/.installed
endif

.PHONY: setup test bench check zoo gpu gpu-smoke report lint clean notebook

setup: $(SETUP)

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(VENV)/bin/python || $(BASE_PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	@touch $@

# The suite runs in TEST_JOBS pytest processes (pytest-xdist, a test extra; where it is missing,
# as with a PY= that lacks it, in one), the tests marked slow handed out first (tests/conftest.py).
# Many tests wait on child processes, so one more process than cores keeps both cores busy
# (measured on the 2-core VM: 478 s with 2, 393 s with 3, 620 s with 4, before some speed-ups).
TEST_JOBS ?= 3

test: $(SETUP)
	$(PYTHON) -m pytest -q $$($(PYTHON) -c 'import xdist' 2>/dev/null && echo "-n $(TEST_JOBS) --dist loadgroup") $(ARGS)

bench: $(SETUP)
	$(PYTHON) -m harness bench --profile $(PROFILE) --report $(ARGS)

check: $(SETUP)
	$(PYTHON) -m harness check $(ARGS)

zoo: $(SETUP)
	$(PYTHON) -m harness zoo $(ARGS)

# One command: bench checks every device itself (check.json in the run folder), then the
# gpu profile (bounded by its wall budget), then the report; the wall time is printed last.
gpu: $(SETUP)
	@start=$$(date +%s); \
	$(PYTHON) -m harness bench --profile gpu --report $(ARGS); rc=$$?; \
	echo "make gpu: $$(( $$(date +%s) - start )) s wall (exit $$rc)"; exit $$rc

# Before `make gpu`: every GPU implementation and mode once at a tiny size (grads against
# the reference, the benchmark worker, memory, precision, the peak); exit 1 on any FAIL.
gpu-smoke: $(SETUP)
	$(PYTHON) -m harness smoke $(ARGS)

report: $(SETUP)
	$(PYTHON) -m harness report $(RUN)

# The teaching notebook, run top to bottom in a kernel of $(PYTHON); outputs written in place.
notebook: $(SETUP)
	$(if $(RUN),BACKPROP_BENCH_RUN=$(RUN) )$(PYTHON) -m harness.lessons.notebook

lint: $(SETUP)
	$(PYTHON) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
