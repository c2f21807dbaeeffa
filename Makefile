# make test   install what is missing into .venv, then run the test suite
# make bench  install what is missing, run every model on $(DATASET) (default: the quick look on
#             synthetic), show the results table and write the report; a real dataset
#             (DATASET=toys, beauty) prints its plan first and asks before hours of training
# make quicklook  time the quick look and rewrite the README's figures from it (BUSY=1: with one other
#             CPU-bound process beside it); results/quicklook.json keeps each condition's measurement
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATASET ?= synthetic
SEEDS ?= 1
CONFIRM ?=
OUT ?= runs
BENCH_ARGS ?=

.PHONY: install test bench quicklook clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, from the CPU build, so the project's 'torch' requirement pulls nothing bigger
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0 || \
		$(BIN)/pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: install
	$(BIN)/python -m pytest -q

bench: install
	@if [ "$(DATASET)" != synthetic ] && [ "$(CONFIRM)" != yes ]; then \
		$(BIN)/bench run --models all --dataset $(DATASET) --seeds $(SEEDS) --out $(OUT) $(BENCH_ARGS) --dry-run && \
		if [ -t 0 ]; then read -p "start this grid? [y/N] " ok && [ "$$ok" = y ]; \
		else echo "the plan above; start it with: make bench DATASET=$(DATASET) CONFIRM=yes"; false; fi; \
	fi
	$(BIN)/bench run --models all --dataset $(DATASET) --seeds $(SEEDS) --out $(OUT) $(BENCH_ARGS)
	$(BIN)/bench results $(OUT)
	$(BIN)/bench report $(OUT) --out $(OUT)/report

quicklook: install
	$(BIN)/python scripts/quicklook.py $(if $(BUSY),--busy)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
