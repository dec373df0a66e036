"""One error type for every data problem, with the file, the key, and expected vs found."""
from __future__ import annotations

from pathlib import Path

REAL_DATA_HINT = (
    "Real features come from the MulT pickles (yaohungt/Multimodal-Transformer, "
    "'{mosei_senti,iemocap,mosi}_data.pkl'), MMSA's feature pickles (thuiar/MMSA, "
    "'MOSI/Processed/aligned_50.pkl' etc.) or the CMU-MultimodalSDK computational "
    "sequences (.csd); see data/README.md. Without them, use the built-in synthetic "
    "stand-in: source='synthetic' (or `cmn synth --dataset mosei --out DIR`)."
)


class DataWarning(UserWarning):
    """A data file can be used, but something in it needs the reader's attention (mixed
    padding, for example); the message names the file and the keys."""


class DataError(ValueError):
    """A data file or folder cannot be used; the message says where, what and why.

    Attributes mirror the message so that callers (the `inspect` command, tests) can
    branch on them without parsing text.
    """

    def __init__(self, path: str | Path | None, message: str, *, key: str | None = None,
                 expected: str | None = None, found: str | None = None, hint: str | None = None):
        self.path = None if path is None else str(path)
        self.key = key
        self.expected = expected
        self.found = found
        parts = []
        if self.path is not None:
            parts.append(f"{self.path}")
        if key is not None:
            parts.append(f"[{key}]")
        head = " ".join(parts)
        text = f"{head}: {message}" if head else message
        details = [f"{word} {value}" for word, value in (("expected", expected), ("found", found))
                   if value is not None]
        if details:
            text += f" ({'; '.join(details)})"
        if hint:
            text += f". {hint}"
        super().__init__(text)
