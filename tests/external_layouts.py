"""Independent writers for data files in the layouts that third-party tools produce.

The project's readers are usually tested on files the project wrote itself, so a reader and
its writer can share a misunderstanding of a format and still agree with each other. The
writers here are written from the public descriptions of the formats only, and import nothing
from ``cmnlib``, so that a reader can be checked against files it did not help to make.

Four layouts:

``write_mmsa_pickle``
    A processed feature pickle as published by MMSA (thuiar/MMSA; ``MOSI/Processed/aligned_50.pkl``,
    ``unaligned_50.pkl``, ``MOSEI/Processed/...``, ``SIMS/Processed/unaligned_39.pkl``).
``write_mult_pickle_padded``
    A MulT-layout pickle (yaohungt/Multimodal-Transformer; ``mosei_senti_data.pkl``,
    ``mosi_data.pkl``, ``iemocap_data.pkl`` and the ``*_noalign.pkl`` variants), padded on the
    side you choose.
``write_mmsa_label_csv``
    MMSA's ``label.csv`` for the raw-data version of a dataset.
``write_sdk_csd_folder``
    CMU-MultimodalSDK computational sequences (``.csd``, HDF5) as the SDK's ``CMU_MOSEI``
    download holds them: timestamped word vectors, COVAREP and FACET frames, and the labels.

Each writer draws everything from ``numpy.random.default_rng(seed)`` and returns
``(path, truth)``: ``truth`` is a plain dict (lists, ints, floats, strings, bools; no numpy
arrays) that states what was written, so a test can compare a reader's output with it. The
layout of every ``truth`` dict is given in the writer's docstring. Split entries sit under the
keys ``"train"``, ``"valid"`` and ``"test"``; everything else about the file sits under
``"meta"``.

Conventions shared by all writers
---------------------------------
* ``n`` is the number of samples per split, ``(train, valid, test)``.
* Sequence lengths are at least 1. In every split of two or more samples, at least one sample is
  shorter than the padded length and at least one is full length (as long as the padded length
  leaves room for a shorter sample). A split of one sample is full length.
* Every feature value in a valid step is nonzero (``|x| >= 0.1``), so no valid step is all zero
  and no valid step sums to exactly zero; every padding step is exactly zero.
* ``-inf`` values (real COVAREP audio has them) are only written when asked for, and only inside
  valid audio steps, never in padding.
"""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np

__all__ = [
    "SPLITS",
    "MMSA_SEQ_LENS",
    "MMSA_FEATURE_DIMS",
    "MULT_FEATURE_DIMS",
    "MMSA_LABEL_CSV_COLUMNS",
    "write_mmsa_pickle",
    "write_mult_pickle_padded",
    "write_mmsa_label_csv",
    "write_sdk_csd_folder",
]

SPLITS = ("train", "valid", "test")

# Padded lengths (text, audio, vision) of the published MMSA files, for reference; the writers
# default to much smaller ones.
MMSA_SEQ_LENS = {
    ("mosi", True): (50, 50, 50),
    ("mosi", False): (50, 500, 375),
    ("mosei", True): (50, 50, 50),
    ("mosei", False): (50, 500, 375),
    ("sims", False): (39, 400, 55),
}
# Feature dimensions (text, audio, vision) of the published MMSA files: BERT, then COVAREP /
# librosa audio, then Facet / OpenFace vision.
MMSA_FEATURE_DIMS = {
    "mosi": (768, 5, 20),
    "mosei": (768, 74, 35),
    "sims": (768, 33, 709),
}
# Feature dimensions (text, audio, vision) of the MulT files: GloVe words, COVAREP, Facet.
MULT_FEATURE_DIMS = {
    "mosei": (300, 74, 35),
    "mosi": (300, 5, 20),
    "iemocap": (300, 74, 35),
}
MMSA_LABEL_CSV_COLUMNS = (
    "video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode",
)

# MMSA maps the three-way annotation to these class indices.
_ANNOTATION_CLASS = {"Negative": 0, "Neutral": 1, "Positive": 2}
# BERT special tokens; the same ids in bert-base-uncased and bert-base-chinese.
_CLS_ID, _SEP_ID = 101, 102
_VOCAB = {"en": (1996, 30522), "zh": (670, 8000)}
_IEMOCAP_EMOTIONS = ("neutral", "happy", "sad", "angry")

_MMSA_DEFAULT_T = {True: (8, 8, 8), False: (8, 10, 12)}

# A small vocabulary for plausible transcript sentences.
_EN_OPENERS = ("i", "i really", "honestly i", "i kind of", "we", "my friends and i")
_EN_VERBS = ("liked", "loved", "hated", "enjoyed", "didn't like", "couldn't stand", "got bored by")
_EN_OBJECTS = (
    "the movie", "the acting", "the plot", "the ending", "this film", "the soundtrack",
    "the main character", "the first half",
)
_EN_TAILS = (
    "", "", " a lot", " so much", ", but the ending was great", ", and it's not even close",
    " to be honest", ", which surprised me",
)
_ZH_SUBJECTS = ("这部电影", "这个故事", "结局", "演员的表演", "这段视频")
_ZH_ADVERBS = ("真的", "有点", "非常", "还是", "挺")
_ZH_PREDICATES = ("好看", "无聊", "感人", "让人失望", "不错", "搞笑")
_ZH_TAILS = ("", "", "，我很喜欢", "，但是结局还行", "，说实话")


# ----------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------

def _split_sizes(n) -> dict[str, int]:
    if isinstance(n, (int, np.integer)):
        sizes = (int(n),) * 3
    else:
        sizes = tuple(int(k) for k in n)
    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"n must be one positive size or three (train, valid, test), got {n!r}")
    return dict(zip(SPLITS, sizes))


def _triple(value, name: str) -> tuple[int, int, int]:
    if isinstance(value, (int, np.integer)):
        out = (int(value),) * 3
    else:
        out = tuple(int(v) for v in value)
    if len(out) != 3 or min(out) < 1:
        raise ValueError(f"{name} must be one positive int or three (text, audio, vision), got {value!r}")
    return out


def _draw_lengths(rng, n: int, t: int, *, min_len: int = 1, min_short: int = 1) -> np.ndarray:
    """Lengths in [min_len, t]: one sample full length and ``min_short`` samples shorter."""
    lo = max(1, min(min_len, t))
    lengths = rng.integers(lo, t + 1, size=n)
    if n >= 2 and t > lo:
        order = rng.permutation(n)
        lengths[order[0]] = t
        for i in order[1:1 + min(max(min_short, 1), n - 1)]:
            if lengths[i] >= t:
                lengths[i] = rng.integers(lo, t)
    elif n == 1:
        lengths[:] = t
    return lengths.astype(np.int64)


def _valid_values(rng, steps: int, dim: int) -> np.ndarray:
    """Random values with |x| >= 0.1 (never zero)."""
    z = rng.standard_normal((steps, dim))
    return (np.where(z < 0, -1.0, 1.0) * (np.abs(z) + 0.1)).astype(np.float32)


def _padded(rng, lengths, t: int, dim: int, sides) -> np.ndarray:
    """(N, t, dim) float32: sample i has lengths[i] valid steps, zeros elsewhere.

    ``sides[i]`` is "right" (valid steps first, zeros after) or "left" (zeros first).
    """
    out = np.zeros((len(lengths), t, dim), dtype=np.float32)
    for i, length in enumerate(lengths):
        values = _valid_values(rng, int(length), dim)
        if sides[i] == "right":
            out[i, :length] = values
        else:
            out[i, t - length:] = values
    return out


def _put_neg_inf(rng, audio: np.ndarray, lengths, sides) -> int:
    """Write -inf into a few valid audio steps of about a third of the samples; return the count."""
    n, t, dim = audio.shape
    chosen = rng.choice(n, size=max(1, n // 3), replace=False)
    for i in chosen:
        length = int(lengths[i])
        start = 0 if sides[i] == "right" else t - length
        for _ in range(int(rng.integers(1, 3))):
            step = start + int(rng.integers(0, length))
            audio[i, step, int(rng.integers(0, dim))] = -np.inf
    return int(np.isneginf(audio).sum())


def _label_grid(dataset: str) -> tuple[float, float, int]:
    """(low, high, steps): labels are low + k * (high - low) / steps, k = 0..steps."""
    if dataset == "sims":
        return -1.0, 1.0, 10           # multiples of 0.2 in [-1, 1]
    if dataset == "mosei":
        return -3.0, 3.0, 18           # means of three annotators: multiples of 1/3
    return -3.0, 3.0, 30               # MOSI, means of five annotators: multiples of 0.2


def _draw_labels(rng, n: int, dataset: str) -> np.ndarray:
    """float64 sentiment labels on the dataset's grid; with three or more samples, both signs and a 0."""
    low, high, steps = _label_grid(dataset)
    k = rng.integers(0, steps + 1, size=n)
    if n >= 3:
        order = rng.permutation(n)
        k[order[0]] = int(rng.integers(0, steps // 2))               # negative
        k[order[1]] = steps // 2                                     # neutral
        k[order[2]] = int(rng.integers(steps // 2 + 1, steps + 1))   # positive
    values = low + k * (high - low) / steps
    return np.round(values, 4 if dataset == "mosei" else 1)


def _annotation(label: float) -> str:
    return "Negative" if label < 0 else ("Neutral" if label == 0 else "Positive")


def _sentence(rng, language: str) -> str:
    if language == "zh":
        return (str(rng.choice(_ZH_SUBJECTS)) + str(rng.choice(_ZH_ADVERBS))
                + str(rng.choice(_ZH_PREDICATES)) + str(rng.choice(_ZH_TAILS)))
    return " ".join((str(rng.choice(_EN_OPENERS)), str(rng.choice(_EN_VERBS)),
                     str(rng.choice(_EN_OBJECTS)))) + str(rng.choice(_EN_TAILS))


def _youtube_like_id(rng) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size=11))


def _video_clip_ids(rng, n: int, dataset: str, offset: int) -> tuple[list[str], list[str]]:
    """A few videos with several clips each, as in the real sets."""
    videos, clips = [], []
    video, clip = None, 0
    for i in range(n):
        if video is None or rng.random() < 0.4:
            video = (f"video_{offset + i + 1:04d}" if dataset == "sims" else _youtube_like_id(rng))
            clip = 0
        clip += 1
        videos.append(video)
        clips.append(f"{clip:04d}" if dataset == "sims" else str(clip))
    return videos, clips


def _dump(path, obj) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)
    return path


def _ints(a) -> list[int]:
    return [int(v) for v in a]


def _floats(a) -> list[float]:
    return [float(v) for v in a]


# ----------------------------------------------------------------------------------------------
# MMSA processed pickle
# ----------------------------------------------------------------------------------------------

def write_mmsa_pickle(path, *, dataset: str = "mosi", aligned: bool = True, n=(6, 4, 4),
                      lengths=None, dims=None, neg_inf_audio: bool = False, seed: int = 0,
                      lengths_as_lists: bool = False, aligned_length_keys: bool = True):
    """Write an MMSA processed feature pickle and return ``(path, truth)``.

    The file is one dict ``{"train": ..., "valid": ..., "test": ...}``; each split is a dict of

    ``raw_text`` (N,) str; ``audio`` (N, T_a, D_a) float32; ``vision`` (N, T_v, D_v) float32;
    ``id`` (N,) str ``"<video_id>$_$<clip_id>"``; ``text`` (N, T_t, D_t) float32 (BERT hidden
    states); ``text_bert`` (N, 3, T_t) float64 holding token ids, attention mask and segment ids;
    ``audio_lengths`` and ``vision_lengths`` (N,) int64 arrays (Python lists of int with
    ``lengths_as_lists=True``); ``annotations`` (N,) str in Negative/Neutral/Positive;
    ``classification_labels`` (N,) int64 (Negative 0, Neutral 1, Positive 2);
    ``regression_labels`` (N,) float32. CH-SIMS (``dataset="sims"``) also carries
    ``regression_labels_T``/``_A``/``_V`` (N,) float32 and ``classification_labels_T``/``_A``/``_V``.

    Padding is on the right (valid steps first, zeros after), as MMSA's feature extraction pads
    "back". Text: the ``text_bert`` mask is ones for the first L_t positions, then zeros; L_t
    counts [CLS] (id 101, first) and [SEP] (id 102, at L_t - 1), so L_t >= 2 whenever T_t >= 2;
    ``text`` has exactly L_t nonzero steps. Segment ids are all 0.

    Aligned files (``aligned=True``; MOSI/MOSEI only, CH-SIMS is published unaligned): T_t = T_a =
    T_v and each sample has ONE length L for all three modalities, L = number of mask ones.
    MMSA's own loader does not read ``audio_lengths``/``vision_lengths`` for aligned data
    (Self-MM-style loaders and models take the mask sum instead), so these keys are written equal
    to L, or left out with ``aligned_length_keys=False`` to check a reader does not need them.

    Labels: MOSI multiples of 0.2 in [-3, 3], MOSEI multiples of 1/3 in [-3, 3] (rounded to 4
    decimals), CH-SIMS multiples of 0.2 in [-1, 1]; with three or more samples a split holds a
    negative, a zero and a positive label.

    Parameters: ``n`` samples per split; ``lengths`` the padded lengths (T_t, T_a, T_v) or one int
    (default (8, 8, 8) aligned, (8, 10, 12) unaligned); ``dims`` (D_t, D_a, D_v), default the
    published ones (``MMSA_FEATURE_DIMS``); ``neg_inf_audio`` writes a few -inf values inside valid
    audio steps of about a third of each split's samples.

    ``truth``::

        {"meta": {"layout": "mmsa", "dataset": str, "aligned": bool,
                  "seq_lens": [T_t, T_a, T_v], "dims": [D_t, D_a, D_v],
                  "padding": "right", "neg_inf_audio": bool, "lengths_as_lists": bool,
                  "has_length_keys": bool},
         "<split>": {"n": int,
                     "ids": [str],                      # the "id" entries, in file order
                     "raw_text": [str],
                     "lengths": {"text": [int], "audio": [int], "vision": [int]},
                     "labels": {"M": [float]}           # plus "T", "A", "V" for CH-SIMS
                     "annotations": [str],
                     "classification_labels": [int],
                     "neg_inf_count": int}}             # -inf values in this split's audio
    """
    dataset = str(dataset).lower()
    if dataset not in MMSA_FEATURE_DIMS:
        raise ValueError(f"dataset must be one of {sorted(MMSA_FEATURE_DIMS)}, got {dataset!r}")
    if dataset == "sims" and aligned:
        raise ValueError("CH-SIMS is published only unaligned (SIMS/Processed/unaligned_39.pkl); "
                         "pass aligned=False")
    seq_lens = _triple(_MMSA_DEFAULT_T[bool(aligned)] if lengths is None else lengths, "lengths")
    if aligned and len(set(seq_lens)) != 1:
        raise ValueError(f"aligned files have one padded length for all modalities, got {seq_lens}")
    feat_dims = _triple(MMSA_FEATURE_DIMS[dataset] if dims is None else dims, "dims")
    sizes = _split_sizes(n)
    language = "zh" if dataset == "sims" else "en"
    rng = np.random.default_rng(seed)
    t_t, t_a, t_v = seq_lens
    d_t, d_a, d_v = feat_dims

    data, truth = {}, {"meta": {
        "layout": "mmsa", "dataset": dataset, "aligned": bool(aligned), "seq_lens": list(seq_lens),
        "dims": list(feat_dims), "padding": "right", "neg_inf_audio": bool(neg_inf_audio),
        "lengths_as_lists": bool(lengths_as_lists),
        "has_length_keys": bool(aligned_length_keys or not aligned),
    }}
    offset = 0
    for split in SPLITS:
        size = sizes[split]
        right = ["right"] * size
        len_t = _draw_lengths(rng, size, t_t, min_len=2)
        if aligned:
            len_a = len_v = len_t.copy()
        else:
            len_a = _draw_lengths(rng, size, t_a)
            len_v = _draw_lengths(rng, size, t_v)

        text = _padded(rng, len_t, t_t, d_t, right)
        audio = _padded(rng, len_a, t_a, d_a, right)
        vision = _padded(rng, len_v, t_v, d_v, right)
        neg_inf = _put_neg_inf(rng, audio, len_a, right) if neg_inf_audio else 0

        lo, hi = _VOCAB[language]
        text_bert = np.zeros((size, 3, t_t), dtype=np.float64)
        for i, length in enumerate(len_t):
            ids = rng.integers(lo, hi, size=int(length))
            ids[0] = _CLS_ID
            if length >= 2:
                ids[length - 1] = _SEP_ID
            text_bert[i, 0, :length] = ids
            text_bert[i, 1, :length] = 1.0

        videos, clips = _video_clip_ids(rng, size, dataset, offset)
        offset += size
        ids = np.array([f"{v}$_${c}" for v, c in zip(videos, clips)])
        raw_text = np.array([_sentence(rng, language) for _ in range(size)])
        labels = {"M": _draw_labels(rng, size, dataset).astype(np.float32)}
        if dataset == "sims":
            for m in "TAV":
                labels[m] = _draw_labels(rng, size, dataset).astype(np.float32)
        annotations = [_annotation(v) for v in labels["M"]]

        entry = {
            "raw_text": raw_text,
            "audio": audio,
            "vision": vision,
            "id": ids,
            "text": text,
            "text_bert": text_bert,
        }
        if not aligned or aligned_length_keys:
            entry["audio_lengths"] = _ints(len_a) if lengths_as_lists else len_a.copy()
            entry["vision_lengths"] = _ints(len_v) if lengths_as_lists else len_v.copy()
        entry["annotations"] = np.array(annotations)
        entry["classification_labels"] = np.array([_ANNOTATION_CLASS[a] for a in annotations],
                                                  dtype=np.int64)
        entry["regression_labels"] = labels["M"]
        if dataset == "sims":
            for m in "TAV":
                entry[f"classification_labels_{m}"] = np.array(
                    [_ANNOTATION_CLASS[_annotation(v)] for v in labels[m]], dtype=np.int64)
                entry[f"regression_labels_{m}"] = labels[m]
        data[split] = entry

        truth[split] = {
            "n": size,
            "ids": [str(s) for s in ids],
            "raw_text": [str(s) for s in raw_text],
            "lengths": {"text": _ints(len_t), "audio": _ints(len_a), "vision": _ints(len_v)},
            "labels": {k: _floats(v) for k, v in labels.items()},
            "annotations": annotations,
            "classification_labels": [_ANNOTATION_CLASS[a] for a in annotations],
            "neg_inf_count": neg_inf,
        }
    return _dump(path, data), truth


# ----------------------------------------------------------------------------------------------
# MulT pickle
# ----------------------------------------------------------------------------------------------

def write_mult_pickle_padded(path, *, side: str = "right", dataset: str = "mosei", n=(6, 4, 4), t=10,
                             dims=None, seed: int = 0, aligned: bool = True, mixed: bool = False,
                             neg_inf_audio: bool = False):
    """Write a pickle in the MulT layout, padded on a chosen side, and return ``(path, truth)``.

    The file is one dict of splits; each split holds ``text`` (N, T_t, D_t), ``audio``
    (N, T_a, D_a), ``vision`` (N, T_v, D_v), all float32, ``labels`` float32 and, except for
    IEMOCAP (whose published files have no ids), ``id``: an (N, 3) array of
    [video_id, start, end], as bytes for MOSI (MulT decodes MOSI ids as UTF-8) and str otherwise.

    ``labels``: (N, 1, 1) sentiment in [-3, 3] for ``"mosei"`` (multiples of 1/3) and ``"mosi"``
    (multiples of 0.2); (N, 4, 2) for ``"iemocap"``: for each of neutral, happy, sad, angry a
    one-hot pair [not, is] (MulT takes the argmax over the last axis); exactly one emotion is
    "is" per sample.

    Padding: ``side="left"`` puts the zeros first and the valid steps at the end (MulT's own
    files); ``side="right"`` puts the valid steps first (files written by other tools).
    ``mixed=True`` ignores ``side`` and pads half the samples of each split on each side (the
    extra one of an odd split on the right); with three or more samples and T_t >= 2, at least
    one sample shorter than T_t (by its text length) sits on each side.

    ``t``: the padded length, one int or (T_t, T_a, T_v); aligned files (``aligned=True``) need
    one value and give each sample one length for all modalities; ``aligned=False`` (the
    ``*_noalign.pkl`` files) draws each modality's length separately. ``dims`` default:
    ``MULT_FEATURE_DIMS[dataset]``. ``neg_inf_audio`` as in ``write_mmsa_pickle``.

    ``truth``::

        {"meta": {"layout": "mult", "dataset": str, "aligned": bool, "mixed": bool,
                  "side": "left" | "right" | "mixed", "seq_lens": [T_t, T_a, T_v],
                  "dims": [D_t, D_a, D_v], "label_shape": [1, 1] | [4, 2], "has_id": bool,
                  "neg_inf_audio": bool},
         "<split>": {"n": int,
                     "sides": ["left" | "right"],       # per sample
                     "lengths": {"text": [int], "audio": [int], "vision": [int]},
                     "labels": [float] (sentiment) | [[[float, float]] * 4] (IEMOCAP),
                     "emotion": [int] (IEMOCAP only: index of the "is" emotion)
                     "ids": [[str, str, str]] | None,   # decoded text for MOSI too
                     "neg_inf_count": int}}
    """
    dataset = str(dataset).lower()
    if dataset not in MULT_FEATURE_DIMS:
        raise ValueError(f"dataset must be one of {sorted(MULT_FEATURE_DIMS)}, got {dataset!r}")
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    seq_lens = _triple(t, "t")
    if aligned and len(set(seq_lens)) != 1:
        raise ValueError(f"aligned files have one padded length for all modalities, got {seq_lens}")
    feat_dims = _triple(MULT_FEATURE_DIMS[dataset] if dims is None else dims, "dims")
    sizes = _split_sizes(n)
    rng = np.random.default_rng(seed)
    t_t, t_a, t_v = seq_lens
    d_t, d_a, d_v = feat_dims
    iemocap = dataset == "iemocap"

    data, truth = {}, {"meta": {
        "layout": "mult", "dataset": dataset, "aligned": bool(aligned), "mixed": bool(mixed),
        "side": "mixed" if mixed else side, "seq_lens": list(seq_lens), "dims": list(feat_dims),
        "label_shape": [4, 2] if iemocap else [1, 1], "has_id": not iemocap,
        "neg_inf_audio": bool(neg_inf_audio),
    }}
    for split in SPLITS:
        size = sizes[split]
        min_short = 2 if mixed else 1
        len_t = _draw_lengths(rng, size, t_t, min_short=min_short)
        if aligned:
            len_a = len_v = len_t.copy()
        else:
            len_a = _draw_lengths(rng, size, t_a, min_short=min_short)
            len_v = _draw_lengths(rng, size, t_v, min_short=min_short)

        if mixed:
            sides = _mixed_sides(rng, len_t, t_t)
        else:
            sides = [side] * size

        text = _padded(rng, len_t, t_t, d_t, sides)
        audio = _padded(rng, len_a, t_a, d_a, sides)
        vision = _padded(rng, len_v, t_v, d_v, sides)
        neg_inf = _put_neg_inf(rng, audio, len_a, sides) if neg_inf_audio else 0

        entry = {"text": text, "audio": audio, "vision": vision}
        split_truth = {"n": size, "sides": list(sides),
                       "lengths": {"text": _ints(len_t), "audio": _ints(len_a), "vision": _ints(len_v)}}
        if iemocap:
            emotion = rng.integers(0, 4, size=size)
            if size >= 4:
                emotion[rng.permutation(size)[:4]] = np.arange(4)
            labels = np.zeros((size, 4, 2), dtype=np.float32)
            labels[:, :, 0] = 1.0
            labels[np.arange(size), emotion, 0] = 0.0
            labels[np.arange(size), emotion, 1] = 1.0
            split_truth["labels"] = labels.tolist()
            split_truth["emotion"] = _ints(emotion)
            split_truth["ids"] = None
        else:
            sentiment = _draw_labels(rng, size, dataset).astype(np.float32)
            labels = sentiment.reshape(size, 1, 1)
            split_truth["labels"] = _floats(sentiment)
            rows = []
            for video, _clip in zip(*_video_clip_ids(rng, size, dataset, 0)):
                start = round(float(rng.uniform(0.0, 60.0)), 3)
                rows.append([video, f"{start:.3f}", f"{start + float(rng.uniform(1.0, 8.0)):.3f}"])
            ids = np.array(rows)
            entry["id"] = np.char.encode(ids, "utf-8") if dataset == "mosi" else ids
            split_truth["ids"] = [[str(x) for x in row] for row in rows]
        entry["labels"] = labels
        split_truth["neg_inf_count"] = neg_inf
        data[split] = entry
        truth[split] = split_truth
    return _dump(path, data), truth


def _mixed_sides(rng, lengths, t: int) -> list[str]:
    """Half "left", half "right" (odd one out on the right), shorter samples spread over both."""
    n = len(lengths)
    short = [int(i) for i in rng.permutation(np.flatnonzero(lengths < t))]
    full = [int(i) for i in rng.permutation(np.flatnonzero(lengths >= t))]
    # alternate through the short samples first, so both sides get one when there are two
    order = short + full
    n_left = n // 2
    sides = ["right"] * n
    for i in order[0::2][:n_left]:
        sides[i] = "left"
    return sides


# ----------------------------------------------------------------------------------------------
# MMSA label.csv
# ----------------------------------------------------------------------------------------------

def write_mmsa_label_csv(path, *, n=(6, 4, 4), seed: int = 0, sims: bool = False):
    """Write MMSA's ``label.csv`` (raw-data version) and return ``(path, truth)``.

    Columns, in this order: video_id, clip_id, text, label, label_T, label_A, label_V,
    annotation, mode. UTF-8, comma separated, "\\n" line ends, quotes only where a field needs
    them (texts with a comma). Rows of the three modes are interleaved (shuffled), not grouped.

    ``sims=False`` (MOSI-like): YouTube-like video ids, clip ids "1", "2", ...; English
    sentences from a small vocabulary (some with commas and apostrophes); ``label`` a multiple
    of 0.2 in [-3, 3]; label_T/A/V empty. ``sims=True`` (CH-SIMS-like): video ids
    "video_0001", clip ids "0001" (leading zeros that a reader must keep); Chinese sentences;
    label and label_T/A/V multiples of 0.2 in [-1, 1]. ``annotation`` is Negative/Neutral/
    Positive from the sign of ``label``. Labels are written with ``repr(float)``, so parsing a
    field with ``float()`` gives the truth value exactly.

    ``truth``::

        {"meta": {"layout": "mmsa_label_csv", "sims": bool, "columns": [str] * 9,
                  "n_rows": int, "row_modes": [str]},   # mode of each data row, file order
         "<split>": {"n": int,
                     "video_ids": [str], "clip_ids": [str],
                     "ids": [str],                        # "<video_id>$_$<clip_id>"
                     "texts": [str],
                     "labels": {"M": [float]}             # plus "T", "A", "V" when sims
                     "annotations": [str]}}               # each list in file order
    """
    sizes = _split_sizes(n)
    rng = np.random.default_rng(seed)
    dataset = "sims" if sims else "mosi"
    language = "zh" if sims else "en"

    rows = []
    offset = 0
    for split in SPLITS:
        size = sizes[split]
        videos, clips = _video_clip_ids(rng, size, dataset, offset)
        offset += size
        label_m = _draw_labels(rng, size, dataset)
        unimodal = {m: _draw_labels(rng, size, dataset) for m in "TAV"} if sims else {}
        for i in range(size):
            rows.append({
                "video_id": videos[i], "clip_id": clips[i], "text": _sentence(rng, language),
                "M": float(label_m[i]), **{m: float(v[i]) for m, v in unimodal.items()},
                "mode": split,
            })
    # one text with a comma in every file, so that quoting is exercised
    if not any("," in r["text"] for r in rows):
        rows[0]["text"] += ", but the ending was great" if not sims else ", 还行"
    order = rng.permutation(len(rows))
    rows = [rows[int(i)] for i in order]

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(MMSA_LABEL_CSV_COLUMNS)
        for r in rows:
            uni = [repr(r[m]) if sims else "" for m in "TAV"]
            writer.writerow([r["video_id"], r["clip_id"], r["text"], repr(r["M"]), *uni,
                             _annotation(r["M"]), r["mode"]])

    truth = {"meta": {"layout": "mmsa_label_csv", "sims": bool(sims),
                      "columns": list(MMSA_LABEL_CSV_COLUMNS), "n_rows": len(rows),
                      "row_modes": [r["mode"] for r in rows]}}
    for split in SPLITS:
        mine = [r for r in rows if r["mode"] == split]
        labels = {"M": [r["M"] for r in mine]}
        if sims:
            labels.update({m: [r[m] for r in mine] for m in "TAV"})
        truth[split] = {
            "n": len(mine),
            "video_ids": [r["video_id"] for r in mine],
            "clip_ids": [r["clip_id"] for r in mine],
            "ids": [f"{r['video_id']}$_${r['clip_id']}" for r in mine],
            "texts": [r["text"] for r in mine],
            "labels": labels,
            "annotations": [_annotation(r["M"]) for r in mine],
        }
    return path, truth


# ----------------------------------------------------------------------------------------------
# CMU-MultimodalSDK computational sequences
# ----------------------------------------------------------------------------------------------

# File and root names of the SDK's CMU_MOSEI download (mmsdk/mmdatasdk/dataset/standard_datasets).
SDK_MOSEI_FILES = {
    "text": ("CMU_MOSEI_TimestampedWordVectors.csd", "glove_vectors"),
    "audio": ("CMU_MOSEI_COVAREP.csd", "COVAREP"),
    "vision": ("CMU_MOSEI_VisualFacet42.csd", "FACET 4.2"),
    "labels": ("CMU_MOSEI_Labels.csd", "All Labels"),
}
# The SDK's metadata template, with its missing comma that fuses two names into one key.
_SDK_METADATA = ("root name", "computational sequence description", "dimension names",
                 "computational sequence version", "dimension namescomputational sequence version",
                 "alignment compatible", "dataset name", "dataset version", "creator", "contact",
                 "featureset bib citation", "dataset bib citation")


def _write_sdk_csd(path: Path, root: str, data: dict, dimension_names: list) -> None:
    """One computational sequence as the SDK's ``write_CSD`` stores it: a root group, a
    ``data`` group of videos (gzip level 9, as the SDK compresses), a ``metadata`` group of
    one-element variable-length strings, each the JSON text of its value."""
    import h5py  # the only writer here that needs it

    metadata = {key: "" for key in _SDK_METADATA}
    metadata.update({"root name": root, "dimension names": dimension_names, "alignment compatible": True,
                     "dataset name": "CMU-MOSEI", "computational sequence description": f"{root} (test fixture)"})
    with h5py.File(path, "w") as h5:
        group = h5.create_group(root)
        videos = group.create_group("data")
        for video_id, (features, intervals) in data.items():
            video = videos.create_group(video_id)
            video.create_dataset("features", data=features, compression="gzip", compression_opts=9)
            video.create_dataset("intervals", data=intervals, compression="gzip", compression_opts=9)
        meta = group.create_group("metadata")
        for key, value in metadata.items():
            meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            meta[key][0] = json.dumps(value)


def write_sdk_csd_folder(folder, *, videos, segments=(1, 3), words=(2, 7), dims=(300, 74, 35), seed: int = 0,
                         neg_inf_audio: bool = False):
    """Write the four CMU-MOSEI computational sequences of the SDK into ``folder`` and return
    ``(folder, truth)``.

    ``videos``: the video ids to write (a test takes them from the standard folds, which the
    reader splits by). Per video: ``segments`` (min, max) labelled segments, each of ``words``
    (min, max) words, laid out in time from 0 s with a 0.5 s unlabelled pause word ("sp", an
    all-zero vector, as in the SDK's word vectors) before every segment; word durations are
    multiples of 10 ms between 0.2 and 0.5 s. About one segment in three also holds an "sp" word
    inside it: a real step whose features are all zero. Segment intervals run from the start of
    their first word to the end of their last, so every word lies inside exactly one segment or
    none.

    Streams: word vectors float64 (D_t) on the word intervals; COVAREP float32 (D_a) frames of
    10 ms covering the whole video (with ``neg_inf_audio``, some frames of some words hold -inf,
    as real COVAREP does); FACET float64 (D_v) frames of 1/30 s; "All Labels" float64 (n, 7):
    sentiment in [-3, 3] (a multiple of 1/3) then six emotion intensities in [0, 3].

    ``truth``::

        {"meta": {"layout": "sdk_csd", "files": {role: file name}, "dims": [D_t, D_a, D_v],
                  "neg_inf_audio": bool},
         "segments": {"<video_id>[<i>]": {"video": str, "words": int,   # words in the segment
                                          "zero_words": int,            # all-zero "sp" words in it
                                          "label": float, "emotions": [float] * 6,
                                          "text": [[float] * D_t],      # its word vectors, in order
                                          "audio_first_word": [float] * D_a,  # mean of its frames
                                          "neg_inf": bool}}}            # a -inf frame in a word
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d_t, d_a, d_v = dims
    streams = {role: {} for role in SDK_MOSEI_FILES}
    truth = {"meta": {"layout": "sdk_csd", "files": {r: f for r, (f, _) in SDK_MOSEI_FILES.items()},
                      "dims": [d_t, d_a, d_v], "neg_inf_audio": bool(neg_inf_audio)}, "segments": {}}
    for video_id in videos:
        ticks = 0  # time in 10 ms ticks, so that every boundary is exact
        word_rows, word_iv, seg_rows, seg_iv, seg_words = [], [], [], [], []
        for index in range(int(rng.integers(segments[0], segments[1] + 1))):
            word_rows.append(np.zeros(d_t)), word_iv.append((ticks, ticks + 50))  # the pause before it
            ticks += 50
            count = int(rng.integers(words[0], words[1] + 1))
            pause_at = int(rng.integers(0, count)) if rng.random() < 1 / 3 and count > 1 else -1
            start, first = ticks, len(word_rows)
            for w in range(count):
                duration = int(rng.integers(20, 51))
                vector = np.zeros(d_t) if w == pause_at else rng.uniform(0.1, 1.0, d_t) * rng.choice([-1, 1], d_t)
                word_rows.append(vector), word_iv.append((ticks, ticks + duration))
                ticks += duration
            seg_iv.append((start, ticks)), seg_words.append((first, len(word_rows)))
            label = np.concatenate([[round(int(rng.integers(-9, 10)) / 3, 4)], rng.integers(0, 4, 6) * 1.0])
            seg_rows.append(label)
            truth["segments"][f"{video_id}[{index}]"] = {
                "video": video_id, "words": count, "zero_words": int(pause_at >= 0), "label": float(label[0]),
                "emotions": _floats(label[1:]), "text": [_floats(v) for v in word_rows[first:]]}
        audio = rng.uniform(0.1, 1.0, (ticks, d_a)).astype(np.float32)
        audio_iv = np.stack([np.arange(ticks), np.arange(1, ticks + 1)], 1) / 100.0
        frames_v = int(np.ceil(ticks / 100 * 30))
        vision = rng.uniform(0.1, 1.0, (frames_v, d_v))
        vision_iv = np.stack([np.arange(frames_v), np.arange(1, frames_v + 1)], 1) / 30.0
        for (key, seg), (first, _) in zip(list(truth["segments"].items())[-len(seg_iv):], seg_words):
            lo, hi = word_iv[first]
            if neg_inf_audio and rng.random() < 0.5:
                audio[lo + 1, int(rng.integers(0, d_a))] = -np.inf
                seg["neg_inf"] = True
            else:
                seg["neg_inf"] = False
            seg["audio_first_word"] = _floats(audio[lo:hi].astype(np.float64).mean(0))
        words_iv = np.asarray(word_iv, dtype=np.float64) / 100.0
        streams["text"][video_id] = (np.asarray(word_rows), words_iv)
        streams["audio"][video_id] = (audio, audio_iv)
        streams["vision"][video_id] = (vision, vision_iv)
        streams["labels"][video_id] = (np.asarray(seg_rows), np.asarray(seg_iv, dtype=np.float64) / 100.0)
    names = {"text": [f"glove_{i}" for i in range(d_t)], "audio": [f"covarep_{i}" for i in range(d_a)],
             "vision": [f"facet_{i}" for i in range(d_v)],
             "labels": ["sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear"]}
    for role, (file, root) in SDK_MOSEI_FILES.items():
        _write_sdk_csd(folder / file, root, streams[role], names[role])
    return folder, truth
