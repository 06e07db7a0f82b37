# Quickstart: `make study` sets up and runs the embedded study; `make test` runs the tests (all of them,
# as CI does); `make test-fast` runs the pure ones (no Snakemake, model, Slurm or browser) while you edit.
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
BIN := $(VENV)/bin

.PHONY: setup study test test-fast lint clean

setup: $(VENV)/.installed

# numba compiles the estimator's kernels once per machine (~15 s): at setup, not in a study's or the tests'
# first fit
$(VENV)/.installed: pyproject.toml scripts/install_torch.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	bash scripts/install_torch.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[workflow,test]'
	$(BIN)/transferlaw compile-kernels
	touch $@

study: setup
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete

# a module is a work unit, started in the order tests/conftest.py gives (long chains first, see `schedule`);
# the test studies are built once per session and shared by both workers
test: setup
	$(BIN)/python -m pytest -ra -n $(CORES) --dist loadfile --no-loadscope-reorder

test-fast: setup
	$(BIN)/python -m pytest -ra -n $(CORES) -m "not slow"

lint: setup
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean:
	rm -rf results logs .snakemake
