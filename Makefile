# Quickstart: `make study` sets up and runs the embedded study; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
BIN := $(VENV)/bin

.PHONY: setup study test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_torch.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	bash scripts/install_torch.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[workflow,test]'
	touch $@

study: setup
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete

test: setup
	$(BIN)/python -m pytest -ra -n $(CORES) --dist loadfile

lint: setup
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean:
	rm -rf results logs .snakemake
