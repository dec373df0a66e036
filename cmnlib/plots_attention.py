"""Figures for notebooks 02-04: attention heatmaps, AttFlat pooling weights, attention on
the cue words, and diagrams of the MUA wirings. Every function returns a matplotlib Figure
and, given ``save_dir``, writes it as PNG through :func:`cmnlib.plots.save` (which closes
it in pyplot, so a notebook shows it exactly once as the cell's value)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import TwoSlopeNorm
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from .plots import save


def _mark_cues(ax, cue, axis: str = "x") -> None:
    # through the middle of the ambiguous word's cell; black, since the scale is white at uniform
    for t in np.flatnonzero(cue):
        if axis == "x":
            ax.axvline(t + 0.5, color="black", lw=0.5, ls=":")
        else:
            ax.axhline(t + 0.5, color="black", lw=0.5, ls=":")


UNIFORM_SCALE_MAX = 3.0  # the colour scale runs at least from 0 to 3x uniform


def shared_scale(*maps) -> float:
    """The top of one colour scale for several :func:`layer_head_grid` figures, so that a
    caption may compare them: at least :data:`UNIFORM_SCALE_MAX`, else the largest weight
    relative to uniform among all of them."""
    return max(UNIFORM_SCALE_MAX, *(float((np.asarray(m) * np.asarray(m).shape[-1]).max()) for m in maps))


def _tick_step(n: int, most: int = 13) -> int:
    """Every k-th tick, so that at most ``most`` labels share an axis (7-pt labels stay legible)."""
    return max(1, -(-n // most))


def layer_head_grid(maps: np.ndarray, title: str, name: str, save_dir=None, cue=None,
                    query_label: str = "query", key_label: str = "key", cue_on_queries: bool = True,
                    key_names=None, caption: str | None = None, *, data: str, scale_max: float | None = None):
    """Attention maps (layers, heads, T_q, T_k) of one utterance as a grid of heatmaps
    (rows: layers 1..L, columns: heads), each weight shown **relative to uniform attention**
    (weight x T_k: 1 = the uniform level 1/T_k, white), on one fixed diverging scale for the
    grid: blue below uniform, red above, from 0 to at least 3x uniform. A fixed scale keeps
    noise around the uniform level pale instead of stretching it over the whole colour
    range.

    ``cue`` (T,) marks the ambiguous words with dotted lines on the key axis (and on the
    query axis when ``cue_on_queries``, e.g. self-attention or word-aligned queries) and with
    a '*' on the tick labels; ``key_names`` (T_k words) replace the key indices; ``caption``
    (what to look for) is printed under the grid. ``data``: the data's short label (the
    title starts with it). ``scale_max``: the top of the colour scale, shared with other
    grids (:func:`shared_scale`); default this grid's own. Layers and heads are numbered
    from 1."""
    maps = np.asarray(maps)
    layers, heads, t_q, t_k = maps.shape
    relative = maps * t_k
    top = scale_max if scale_max is not None else shared_scale(maps)
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=top)
    fig, axes = plt.subplots(layers, heads, figsize=(2.3 * heads + 0.8, 2.1 * layers + 0.9 + 0.3 * bool(caption)),
                             squeeze=False, sharex=True, sharey=True)
    marked = [f"{i}*" if cue is not None and i < len(cue) and cue[i] else str(i) for i in range(max(t_q, t_k))]
    key_ticks = list(key_names) if key_names is not None else marked[:t_k]
    step_k, step_q = _tick_step(t_k), _tick_step(t_q)
    for i in range(layers):
        for j in range(heads):
            ax = axes[i, j]
            sns.heatmap(relative[i, j], ax=ax, cmap="RdBu_r", norm=norm, cbar=False,
                        xticklabels=False, yticklabels=False)
            ax.set_xticks(np.arange(0, t_k, step_k) + 0.5, key_ticks[::step_k], rotation=90)
            ax.set_yticks(np.arange(0, t_q, step_q) + 0.5, marked[:t_q:step_q], rotation=0)
            ax.tick_params(labelsize=7, length=1.5)
            if cue is not None:
                _mark_cues(ax, cue[:t_k], "x")
                if cue_on_queries:
                    _mark_cues(ax, cue[:t_q], "y")
            if i == 0:
                ax.set_title(f"head {j + 1}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"layer {i + 1}\n{query_label}", fontsize=8)
            if i == layers - 1:
                ax.set_xlabel(key_label, fontsize=8)
    bar = fig.colorbar(axes[0, 0].collections[0], ax=axes, shrink=0.8,
                       label=f"weight ÷ uniform (1/{t_k}); 1 = uniform")
    bar.ax.axhline(1.0, color="black", lw=0.8)
    fig.suptitle(f"{data}: {title}" + ("  (dotted, *: ambiguous words)" if cue is not None else ""), fontsize=9)
    if caption:
        fig.text(0.01, 0.005, caption, fontsize=7, ha="left", va="bottom", wrap=True)
    return save(fig, name, save_dir, data=data)


def flat_attention(maps: dict, cue, title: str, name: str, save_dir=None, *, data: str):
    """AttFlat pooling weights over the words, one panel per modality ('<m>/flat' maps,
    (glimpses, T)), with the uniform weight 1/T and the cue words marked."""
    keys = [k for k in maps if k.endswith("/flat")]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.3 + 1.4 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        weights = np.asarray(maps[key]).mean(0)
        steps = np.arange(weights.shape[0])
        kind = ["ambiguous" if cue is not None and cue[t] else "other" for t in steps]
        sns.barplot(x=steps, y=weights, hue=kind, palette={"ambiguous": "C3", "other": "C0"}, dodge=False,
                    legend=False, ax=ax, native_scale=True)
        ax.axhline(1 / weights.shape[0], color="0.4", lw=0.8, ls="--", label="uniform 1/T")
        ax.set_ylabel(f"{key.split('/')[0]}\nAttFlat weight")
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # off the bars
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("word" + ("  (red: ambiguous words)" if cue is not None else ""))
    fig.suptitle(f"{data}: {title}", fontsize=9)
    fig.tight_layout()
    return save(fig, name, save_dir, data=data)


def cue_share_ratios(table: pd.DataFrame, title: str, name: str, save_dir=None, *, data: str):
    """Share of attention on the cue words divided by the uniform share, per attention map
    (rows of a :func:`cmnlib.analysis.compare_cue_shares` table) and model (its
    '<model> ratio' columns). 1 = no preference for the cue words. Draws nothing and
    returns None for ``table=None`` (data without a cue mask)."""
    if table is None:
        return None
    models = [c[:-len(" ratio")] for c in table.columns if c.endswith(" ratio")]
    labels = [f"{a} L{layer} h{head}" if not a.endswith("flat") else a for a, layer, head in table.index]
    long = pd.DataFrame([{"map": label, "model": model, "ratio": table[f"{model} ratio"].iloc[i]}
                         for i, label in enumerate(labels) for model in models])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(table) + 1.5), 3.2))
    sns.barplot(long, x="map", y="ratio", hue="model", ax=ax)
    ax.axhline(1.0, color="0.3", lw=0.8, ls="--", label="uniform attention")
    ax.tick_params(axis="x", labelrotation=70, labelsize=7)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_xlabel("")
    ax.set_ylabel("share on ambiguous words\n/ uniform share")
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # off the bars
    ax.set_title(f"{data}: {title}", fontsize=9)
    fig.tight_layout()
    return save(fig, name, save_dir, data=data)


def attention_by_class(table: pd.DataFrame, title: str, name: str, save_dir=None, *, data: str):
    """Mean AttFlat pooling weight (x n real words; 1 = uniform) of an ambiguous word and
    of another word, per sentiment class and modality: the rows of
    :func:`cmnlib.analysis.flat_attention_by_class`."""
    if table is None or len(table) == 0:
        return None
    modalities = [c.split(":")[0] for c in table.columns if c.endswith(": ratio")]
    fig, axes = plt.subplots(1, len(modalities), figsize=(3.2 * len(modalities), 2.8), squeeze=False)
    palette = {"ambiguous (cue) word": "#dd8452", "other word": "#4c72b0"}
    for k, (ax, m) in enumerate(zip(axes[0], modalities)):
        long = pd.DataFrame([{"sentiment": sentiment, "word": word,
                              "weight": table.loc[sentiment, f"{m}: {column} × n"]}
                             for sentiment in table.index
                             for word, column in (("ambiguous (cue) word", "cue word"), ("other word", "other word"))])
        sns.barplot(long, x="sentiment", y="weight", hue="word", palette=palette, ax=ax, legend=k == 0)
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--", label="uniform")
        ax.set_title(f"{m} AttFlat", fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel("pooling weight × n" if k == 0 else "")
    axes[0][0].legend(frameon=False, fontsize=7)
    fig.suptitle(f"{data}: {title}", fontsize=9)
    fig.tight_layout()
    return save(fig, name, save_dir, data=data)


# ======================================================================================
# MUA wiring diagrams
# ======================================================================================

_BOX_W, _BOX_H, _COL_GAP = 1.7, 0.55, 3.4
_NICE = {"text": "language", "audio": "audio", "vision": "vision"}


def _box(ax, x, y, text, colour, width=_BOX_W):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - _BOX_H / 2), width, _BOX_H,
                                boxstyle="round,pad=0.02,rounding_size=0.08", fc=colour, ec="0.25", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax, start, end, colour="0.3", rad=0.0, lw=1.0, style="-|>"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=9, color=colour, lw=lw,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))


def mua_wiring(guidance: pd.DataFrame, title: str, name: str, save_dir=None):
    """A box-and-arrow diagram of one MUA wiring from a :func:`cmnlib.analysis.mua_guidance`
    table (so the picture is read off the code): one column per modality (input, LSTM, its
    SA / SGA units, AttFlat), grey arrows for each unit's queries, orange arrows from the
    stream that guides an SGA unit's guided attention (its keys and values), then the
    fusion (sum, LayerNorm, linear head)."""
    modalities = list(dict.fromkeys(guidance["modality"]))
    # keep the L, A, V order whatever the call order
    modalities = [m for m in ("text", "audio", "vision") if m in modalities]
    layers = int(guidance["layer"].max())
    column = {m: k * _COL_GAP for k, m in enumerate(modalities)}
    where = {}
    fig, ax = plt.subplots(figsize=(1.2 + 2.4 * len(modalities), 1.2 + 0.8 * (layers + 4)))
    for m in modalities:
        x = column[m]
        _box(ax, x, -1, f"{_NICE[m]} features", "0.93")
        _box(ax, x, 0, "LSTM", "#cfe2f3")
        _arrow(ax, (x, -1 + _BOX_H / 2), (x, -_BOX_H / 2))
        where[f"{m} LSTM"] = (x, 0)
    rows = guidance.to_dict("records")
    for row in rows:
        x, y = column[row["modality"]], row["layer"]
        _box(ax, x, y, f"{row['kind']} {row['layer']}", "#d9ead3" if row["kind"] == "SA" else "#fce5cd")
        where[row["unit"]] = (x, y)
    for row in rows:
        x, y = where[row["unit"]]
        sx, sy = where[row["queries from"]]
        _arrow(ax, (sx, sy + _BOX_H / 2), (x, y - _BOX_H / 2))
        if not isinstance(row["guided by"], str):  # an SA unit: guided by nothing (a missing value)
            continue
        for source in row["guided by"].split(" + "):
            gx, gy = where[source]
            direction = 1 if gx < x else -1
            start = (gx + direction * _BOX_W / 2, gy + 0.08)
            end = (x - direction * _BOX_W / 2, y - 0.08)
            rad = -0.25 * direction if abs(gx - x) > _COL_GAP else 0.0
            _arrow(ax, start, end, colour="C1", rad=rad, lw=1.4)
    top = layers + 1
    last = {m: guidance[guidance["modality"] == m].iloc[-1]["unit"] for m in modalities}
    for m in modalities:
        x = column[m]
        _box(ax, x, top, "AttFlat", "#ead1dc")
        _arrow(ax, (x, where[last[m]][1] + _BOX_H / 2), (x, top - _BOX_H / 2))
    middle = (column[modalities[0]] + column[modalities[-1]]) / 2
    span = max(column[modalities[-1]] - column[modalities[0]], 0) + _BOX_W
    _box(ax, middle, top + 1.1, "sum → LayerNorm → dropout → linear head", "0.93", width=span)
    for m in modalities:
        _arrow(ax, (column[m], top + _BOX_H / 2), (column[m], top + 1.1 - _BOX_H / 2))
    ax.plot([], [], color="C1", lw=1.4, label="guides (keys and values of guided attention)")
    ax.plot([], [], color="0.3", lw=1.0, label="queries / next layer")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.12), frameon=False, fontsize=7, ncol=1)
    ax.set_xlim(column[modalities[0]] - _BOX_W, column[modalities[-1]] + _BOX_W)
    ax.set_ylim(-1.6, top + 1.6)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save(fig, name, save_dir, data=None)  # a diagram of the code: no data
