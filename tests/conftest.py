"""Shared fixtures: tiny synthetic sets written in the real formats, once per session."""
from __future__ import annotations


import pytest

from cmnlib.data import synthetic

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
