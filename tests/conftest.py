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
