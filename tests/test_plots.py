"""Figures keep their caveat when saved alone: every title names the data, file names start
with it, comparable maps share one colour scale, heads count from 1, labels are legible."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cmnlib import plots, plots_attention


def test_a_figure_whose_titles_do_not_name_its_data_is_refused(tmp_path):
    fig, ax = plt.subplots()
    ax.set_title("labels per split")
    with pytest.raises(ValueError, match="no title names its data"):
        plots.save(fig, "labels", tmp_path, data="synthetic MOSEI-like")
    assert not list(tmp_path.iterdir())  # nothing written
    fig, ax = plt.subplots()
    ax.set_title("synthetic MOSEI-like: labels per split")
    plots.save(fig, "labels", tmp_path, data="synthetic MOSEI-like")
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic-mosei-like_labels.png"]
    fig, ax = plt.subplots()
    plots.save(fig, "diagram", tmp_path, data=None)  # a figure of no data (a diagram of the code)
    assert (tmp_path / "diagram.png").exists()


def test_the_attention_grid_names_its_data_numbers_heads_from_one_and_can_share_a_scale(tmp_path):
    rng = np.random.default_rng(0)
    pale = rng.dirichlet(np.full(6, 200.0), size=(2, 3, 6))     # (layers, heads, T_q, T_k), near uniform
    sharp = np.zeros_like(pale)
    sharp[..., 0] = 1.0                                           # every query on key 0: 6x uniform
    assert plots_attention.shared_scale(pale) == plots_attention.UNIFORM_SCALE_MAX
    assert plots_attention.shared_scale(pale, sharp) == pytest.approx(6.0)
    fig = plots_attention.layer_head_grid(pale, "self-attention", "sa", tmp_path, data="real MOSI",
                                          scale_max=plots_attention.shared_scale(pale, sharp))
    assert fig._suptitle.get_text().startswith("real MOSI: self-attention")
    assert [ax.get_title() for ax in fig.axes[:3]] == ["head 1", "head 2", "head 3"]
    assert fig.axes[0].collections[0].norm.vmax == pytest.approx(6.0)
    assert min(t.get_fontsize() for ax in fig.axes[:6] for t in ax.get_xticklabels()) >= 7
    assert (tmp_path / "real-mosi_sa.png").exists()
    # long sequences: at most 13 labels on an axis, so 7-pt labels do not overlap
    long = rng.dirichlet(np.ones(50), size=(1, 1, 50))
    fig = plots_attention.layer_head_grid(long, "self-attention", "sa_long", None, data="real MOSI")
    assert len(fig.axes[0].get_xticklabels()) <= 13
