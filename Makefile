# Two entry points on a fresh machine with Python 3.11 and make:
#   make reproduce   the notebook sequence on the built-in synthetic data -> reports/quick
#   make test        unit tests + strict nbval over every notebook
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test unit nbval reproduce reproduce-paper notebooks bench clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cmnlib)" > /dev/null
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/python -m pytest tests

nbval: $(STAMP)
	$(BIN)/python -m pytest --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

reproduce: $(STAMP)
	$(BIN)/python -m cmnlib reproduce --profile quick --out reports/quick

reproduce-paper: $(STAMP)
	$(BIN)/python -m cmnlib reproduce --profile paper --out reports/paper

# Re-execute the notebooks in place (quick profile) so their committed outputs are current.
notebooks: $(STAMP)
	$(BIN)/python -m cmnlib reproduce --profile quick --in-place

bench: $(STAMP)
	$(BIN)/python -m cmnlib bench --out reports/bench

clean-data:
	rm -rf data/cache data/synthetic data/runs
