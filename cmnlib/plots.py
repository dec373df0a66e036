"""Figures for the notebooks and reports. Each function returns a matplotlib Figure and,
given ``save_dir``, also writes it as PNG (the batch runner collects them)."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .config import dataset_info
from .metrics import headline
from .results import RunResult
from .data.split import SPLITS, DataBundle

plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 110, "axes.spines.top": False,
                     "axes.spines.right": False, "font.size": 9,
                     # titles carry ids and file names; MMSA ids contain "$_$", which mathtext
                     # would try to parse as an equation
                     "text.parse_math": False})


def slug(text: str) -> str:
    """``text`` as a file-name part: lower case, runs of other characters as one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def titles(fig) -> list[str]:
    """Every title the figure shows: its suptitle and each axes' title."""
    return [t for t in (fig.get_suptitle(), *(t for ax in fig.axes for t in (ax.get_title(), ax.get_title("left"))))
            if t]


def save(fig, name: str, save_dir: str | Path | None, *, data: str | None):
    """Write ``fig`` to ``save_dir/<data>_<name>.png`` when a folder is given; return the
    figure.

    ``data`` is where the plotted numbers come from, in a few words
    (:attr:`cmnlib.data.split.DataBundle.short_label`, e.g. "synthetic MOSEI-like"); a
    title of the figure must say it, so that a PNG saved on its own keeps its caveat, and
    the file name starts with it. None only for figures of no data (diagrams of the code).
    The figure is closed in pyplot so that notebooks show it exactly once, as the value of
    the cell, whatever the kernel's display hooks do.
    """
    if data is not None:
        if not any(data in title for title in titles(fig)):
            raise ValueError(f"figure {name!r}: no title names its data ({data!r}); titles: {titles(fig)}")
        name = name if name.startswith(slug(data)) else f"{slug(data)}_{name}"
    if save_dir is not None:
        path = Path(save_dir)
        path.mkdir(parents=True, exist_ok=True)
        fig.savefig(path / f"{name}.png", bbox_inches="tight")
    plt.close(fig)
    return fig


def label_distribution(bundle: DataBundle, real_reference: dict | None = None, save_dir=None):
    """MOSEI: sentiment histogram per split (thirds), with real MOSEI test for comparison.
    IEMOCAP: class shares per split."""
    fig, ax = plt.subplots(figsize=(7, 3))
    info = dataset_info(bundle.dataset)
    if info.emotions:
        shares = pd.DataFrame([{"emotion": e, "split": name, "share": 100 * c / counts.sum()}
                               for name in SPLITS for counts in [bundle[name].labels.sum(axis=0)]
                               for e, c in zip(info.classes, counts)])
        sns.barplot(shares, x="emotion", y="share", hue="split", ax=ax)
        ax.set_xlabel("")
        ax.set_ylabel("share of split %")
    else:
        edges = np.arange(-19, 20, 2) / 6
        centres = (edges[:-1] + edges[1:]) / 2
        for name in SPLITS:
            hist, _ = np.histogram(bundle[name].labels, bins=edges)
            ax.plot(centres, 100 * hist / hist.sum(), marker="o", ms=3, label=f"{name} (this data)")
        if real_reference is not None:
            hist = np.asarray(real_reference["sentiment_histogram"]["test"], float)
            ax.bar(centres, 100 * hist / hist.sum(), width=0.3, color="0.8", label="real CMU-MOSEI test",
                   zorder=0)
        ax.axvline(0, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel("sentiment label")
        ax.set_ylabel("share of split %")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"{bundle.short_label}: labels per split", fontsize=9)
    return save(fig, "labels", save_dir, data=bundle.short_label)


def sequence_lengths(bundle: DataBundle, save_dir=None):
    """Histogram of true sequence lengths (train), per modality when they differ."""
    fig, ax = plt.subplots(figsize=(6, 2.6))
    split = bundle["train"]
    modalities = split.modalities
    same = all(np.array_equal(split.lengths[m], split.lengths[modalities[0]]) for m in modalities)
    shown = modalities[:1] if same else modalities
    for m in shown:
        lengths = split.lengths[m]
        ax.hist(lengths, bins=np.arange(0, lengths.max() + 2) - 0.5, alpha=0.7,
                label="all modalities (word-aligned)" if same else m)
    ax.set_xlabel("true length (steps)")
    ax.set_ylabel("utterances")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"{bundle.short_label}: true lengths of the training utterances", fontsize=9)
    return save(fig, "lengths", save_dir, data=bundle.short_label)


def example_utterance(bundle: DataBundle, index: int, split: str = "test", save_dir=None):
    """Heatmaps of one utterance's features (valid steps only), cue words marked."""
    part = bundle[split]
    modalities = part.modalities
    fig, axes = plt.subplots(len(modalities), 1, figsize=(7, 1.2 + 1.3 * len(modalities)), sharex=True)
    axes = np.atleast_1d(axes)
    cue = part.extras.get("cue_mask")
    for ax, m in zip(axes, modalities):
        n = int(part.lengths[m][index])
        values = part.features[m][index, :n].T
        limit = np.abs(values).max() or 1.0
        sns.heatmap(values, ax=ax, cmap="RdBu_r", vmin=-limit, vmax=limit, cbar=False, yticklabels=False,
                    xticklabels=max(1, n // 10))
        ax.set_ylabel(f"{m}\n({values.shape[0]}-d)")
        if cue is not None:
            for t in np.flatnonzero(cue[index, :n]):
                ax.axvline(t, color="k", lw=1.2, ls=":")
    axes[-1].set_xlabel("word (aligned step)" + (" — dotted: ambiguous words (audio disambiguates)"
                                                 if cue is not None else ""))
    label = part.labels[index]
    info = dataset_info(bundle.dataset)
    title = info.classes[int(np.argmax(label))] if info.emotions else f"sentiment {float(label):+.2f}"
    # a synthetic utterance borrows a real id's format only: name it by its position instead
    which = f"utterance {index}" if bundle.meta.get("synthetic") else f"utterance {part.ids[index]}"
    axes[0].set_title(f"{bundle.short_label}: {split} {which}, {title}", fontsize=9)
    return save(fig, "example", save_dir, data=bundle.short_label)


def training_curves(result: RunResult, metric: str | None = None, save_dir=None, name: str | None = None, *,
                    data: str):
    """Per seed: training and validation loss by epoch, and a validation metric; the
    selected (best validation) epoch is marked. ``metric``: default the data set's headline
    (falling back to the first validation metric the history has, for another head).
    ``data``: the data's short label (:func:`save`)."""
    members = [m for m in result.members if m.history]
    if not members:
        return None
    recorded = members[0].history[0]
    if metric is None:
        metric = f"valid_{headline(result.dataset).key}"
        if metric not in recorded:
            metric = next(k for k in recorded if k.startswith("valid_") and k != "valid_loss")
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(9, 3))
    for member in members:
        epochs = member.curve("epoch")
        line, = ax_loss.plot(epochs, member.curve("valid_loss"), label=f"seed {member.seed} valid")
        ax_loss.plot(epochs, member.curve("train_loss"), ls="--", color=line.get_color(), alpha=0.6)
        ax_metric.plot(epochs, [100 * v for v in member.curve(metric)], color=line.get_color())
        best = member.best_epoch
        ax_loss.plot([best], [member.history[best - 1]["valid_loss"]], "o", color=line.get_color())
        ax_metric.plot([best], [100 * member.history[best - 1][metric]], "o", color=line.get_color())
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (dashed: train)")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(metric.replace("valid_", "validation ") + " %")
    ax_loss.legend(frameon=False, fontsize=7)
    fig.suptitle(f"{data}: {result.label}", fontsize=9)
    fig.tight_layout()
    return save(fig, name or f"curves_{result.model}", save_dir, data=data)


def ceiling_gaps(gaps, title: str, name: str, save_dir=None, *, data: str):
    """Horizontal bars from 0: each model's ensemble score, the best rule of its own modality
    subset (:func:`cmnlib.studies.beyond.ceiling_gaps`: on the same test utterances, or the
    expected Bayes ceiling) as a black tick, the language-only one as a dashed line (a
    fusion model left of it uses no more than the text) and the constant predictor as a
    dotted line."""
    if gaps is None or len(gaps) == 0:
        return None
    reference = gaps.attrs.get("reference", "ceiling")
    same_split = reference != "ceiling"
    metric = [c for c in gaps.columns if c not in ("model", "modalities", reference, "gap", "captured %")][0]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(gaps) + 1.0))
    sns.barplot(gaps, y="model", x=metric, color="#4c72b0", width=0.6, orient="h", label="model (ensemble)", ax=ax)
    y = np.arange(len(gaps))  # seaborn puts row i at y = i, top to bottom
    ax.scatter(gaps[reference], y, marker="|", s=300, color="black", zorder=3,
               label=("best rule of its modalities, same test split" if same_split
                      else "Bayes ceiling of its modalities"))
    constant = gaps.attrs.get("constant")
    if constant is not None and np.isfinite(constant):
        ax.axvline(constant, ls=":", color="0.4", label="constant predictor")
    text_ceiling = gaps.attrs.get("text_ceiling")
    if text_ceiling is not None:
        ax.axvline(text_ceiling, ls="--", color="#c44e52",
                   label="language-only rule, same test split" if same_split else "language-only ceiling")
    ax.set_ylabel("")
    ax.set_xlabel(metric)  # the column's name: the metric's display name, in %
    ax.set_xlim(0, 100)  # from 0: a truncated axis makes small gaps look large
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not on them
    ax.set_title(f"{data}: {title}", fontsize=9)
    fig.tight_layout()
    return save(fig, name, save_dir, data=data)
