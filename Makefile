# Two entry points on a fresh machine with Python 3.11 and make:
#   make reproduce   the notebook sequence on the built-in synthetic data -> reports/quick
#   make test        unit tests + strict nbval over every notebook, in two numeric environments
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# strict nbval over every notebook (trained-weight outputs are tagged nbval-ignore-output:
# see notebooks/README.md)
NBVAL  := -m pytest --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

.PHONY: install test unit nbval nbval-default nbval-alternate reproduce reproduce-paper notebooks bench clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,featurize]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cmnlib)" > /dev/null
	touch $(STAMP)

install: $(STAMP)

test: unit nbval

unit: $(STAMP)
	$(BIN)/python -m pytest tests

nbval: nbval-default nbval-alternate

nbval-default: $(STAMP)
	$(BIN)/python $(NBVAL)

# The same notebooks on other CPU kernels (cmnlib/numerics.py), training into a runs folder
# of their own: an output that depends on trained weights and is still compared fails here.
nbval-alternate: $(STAMP)
	CMN_RUNS_DIR=$(CURDIR)/data/runs-alternate $(BIN)/python -m cmnlib.numerics run -- $(BIN)/python $(NBVAL)

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
	rm -rf data/cache data/synthetic data/runs data/runs-alternate
