"""Data: the real formats (MulT and MMSA pickles, SDK .csd), the synthetic stand-in, one canonical
split type and the torch loader. Start with :func:`load_dataset`.

Reading data loads no torch: only :func:`make_loader` (the training batches) needs it, and it
is imported when first asked for, so that ``cmn inspect`` and ``cmn --help`` stay light."""
from .errors import DataError
from .sources import load_dataset
from .split import DataBundle, Split

__all__ = ["DataError", "DataBundle", "Split", "load_dataset", "make_loader"]


def __getattr__(name: str):
    if name == "make_loader":  # the one name that needs torch
        from .loader import make_loader  # noqa: PLC0415 -- deliberate: see the module docstring
        return make_loader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
