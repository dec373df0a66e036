# Two entry points on a fresh machine with Python 3.11, 3.12 or 3.13 and make:
#   make reproduce   the notebook sequence on the built-in synthetic data -> reports/quick
#   make test        unit tests + strict nbval over every notebook on other CPU kernels
#
# The interpreter: $(PYTHON) when given (make test PYTHON=python3.13), else python3.11 where
# present (the version whose CPU wheel of torch a CPU-only machine finds most easily; see
# README), else the newest supported python3.1x on the PATH.
SUPPORTED := python3.11 python3.13 python3.12
PYTHON ?= $(firstword $(foreach p,$(SUPPORTED),$(shell command -v $(p) 2>/dev/null)))
ifeq ($(PYTHON),)
$(error no Python 3.11, 3.12 or 3.13 on the PATH: install one, or name it with PYTHON=/path/to/python)
endif
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Two pytest workers (pytest-xdist): a test or a notebook spends much of its time starting
# processes, kernels and imports, which the other worker's computation fills. The unit tests
# start the longest first and a free worker takes queued tests from the other (worksteal),
# so that both end together. nbval keeps
# each notebook whole on one worker (--dist loadfile: its cells run in order in one kernel).
# Two notebooks that train the same run share it through the run's lock.
WORKERS ?= 2
UNIT   := -m pytest tests -n $(WORKERS) --dist worksteal
# strict nbval over every notebook (trained-weight outputs are tagged nbval-ignore-output:
# see notebooks/README.md); a kernel may take longer than nbval's 60 s to start while the
# other worker trains
NBVAL  := -m pytest --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider \
          -n $(WORKERS) --dist loadfile --nbval-kernel-startup-timeout 300

.PHONY: install test unit nbval nbval-default nbval-alternate reproduce reproduce-paper notebooks bench bench-page gpu-smoke clean-data

# uv where it can (the same pinned packages as pip, installed in about a third of pip's time;
# pip's own settings passed on), pip otherwise: tools/install.py. CMN_INSTALLER=pip for pip.
PYTHON_INSTALL := $(PYTHON) tools/install.py

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "make: creating $(VENV) with $$($(PYTHON) --version) ($(PYTHON))"; $(PYTHON) -m venv $(VENV); }
	$(PYTHON_INSTALL) $(BIN)/python '.[dev,featurize]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cmnlib)" > /dev/null
	touch $(STAMP)

install: $(STAMP)

test: unit nbval

unit: $(STAMP)
	$(BIN)/python $(UNIT)

# Strict nbval in a second numeric environment (cmnlib/numerics.py): runs trained from
# initial weights one unit in the last place away (into a runs folder of their own), and the
# notebooks on other CPU kernels. It compares exactly the cells a pass on the default kernels
# compares, so one pass is enough: an output that depends on trained weights and is still
# compared fails here, as it would on a reader's CPU; every other output must match the
# committed one to the character.
nbval: nbval-alternate

# The runs the notebooks read are trained first, in one pool (`cmn reproduce --in-place
# --runs-only`: the notebooks' own defaults, as nbval runs them), from the nudged weights
# on this CPU's fastest kernels.
nbval-alternate: $(STAMP)
	CMN_RUNS_DIR=$(CURDIR)/data/runs-alternate $(BIN)/python -m cmnlib.numerics run --weights-only -- \
	    $(BIN)/python -m cmnlib reproduce --in-place --runs-only
	CMN_RUNS_DIR=$(CURDIR)/data/runs-alternate $(BIN)/python -m cmnlib.numerics run -- $(BIN)/python $(NBVAL)

# The same check on this CPU's default kernels (the runs the notebooks' committed outputs
# come from): not part of `make test`, useful after `make notebooks`.
nbval-default: $(STAMP)
	$(BIN)/python $(NBVAL)

reproduce: $(STAMP)
	$(BIN)/python -m cmnlib reproduce --profile quick --out reports/quick

reproduce-paper: $(STAMP)
	$(BIN)/python -m cmnlib reproduce --profile paper --out reports/paper

# Re-execute the notebooks in place (quick profile) so their committed outputs are current.
notebooks: $(STAMP)
	$(BIN)/python -m cmnlib reproduce --profile quick --in-place

bench: $(STAMP)
	$(BIN)/python -m cmnlib bench --out reports/bench

# The last `make bench` into docs/performance.md's generated part (and docs/bench.json).
bench-page: $(STAMP)
	$(BIN)/python -m cmnlib bench --out reports/bench --page docs/performance.md

# On a machine with a CUDA GPU (minutes): the tests that need one, then 10 paper-profile CMN
# seeds stacked against one at a time (reports/gpu/stacked.md, with the card's name).
gpu-smoke: $(STAMP)
	$(BIN)/python -m pytest tests -k cuda -q -p no:cacheprovider
	$(BIN)/python -m cmnlib bench --stack-timing 10 --device cuda --out reports/gpu

clean-data:
	rm -rf data/cache data/synthetic data/runs data/runs-alternate
