"""Shared fixtures: tiny synthetic sets written in the real formats, once per session."""
from __future__ import annotations

import os
import sys

from cmnlib.config import POOL_WORKERS_ENV, cores_share, pool_share  # torch-free: before torch loads

# Several pytest workers (make test runs two on two cores): each worker's torch, and each
# process it starts, gets its share of the cores (cores_share), and a test that runs the
# whole sequence's pool gets its share of the cores and memory (pool_share) instead of
# the machine.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(cores_share(_WORKERS))
    if "torch" in sys.modules:  # read at load time: too late for the variable alone
        sys.modules["torch"].set_num_threads(cores_share(_WORKERS))
if _WORKERS > 1:
    os.environ.setdefault(POOL_WORKERS_ENV, str(pool_share(_WORKERS)))

import pytest  # noqa: E402

from cmnlib.data import synthetic  # noqa: E402

TINY = {"train": 60, "valid": 20, "test": 30}


@pytest.fixture(scope="session")
def tiny_mosei_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mosei")
    synthetic.generate_mosei(out, seed=3, sizes=TINY, monte_carlo_samples=2000)
    return out


@pytest.fixture(scope="session")
def tiny_iemocap_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("iemocap")
    synthetic.generate_iemocap(out, seed=3, sizes=TINY, monte_carlo_samples=2000)
    return out


@pytest.fixture()
def data_home(tmp_path, monkeypatch):
    """Point cmnlib's data folder (synthetic sets and cache) at a temporary folder."""
    monkeypatch.setenv("CMN_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def pytest_collection_modifyitems(items):
    """The tests marked ``long(minutes=...)`` first, longest first (a stable sort keeps
    every other order): a worker that starts the longest test early ends with the others
    (``make test`` runs two workers that steal queued tests from each other), instead of
    running it alone at the end. The minutes are CPU-minutes on a 2-core Xeon, for the
    order only."""
    def minutes(item) -> float:
        marker = item.get_closest_marker("long")
        return 0.0 if marker is None else float(marker.kwargs.get("minutes", 1))
    items.sort(key=lambda item: -minutes(item))
