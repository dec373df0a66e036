"""Data: the real formats (MulT and MMSA pickles, SDK .csd), the synthetic stand-in, one canonical
split type and the torch loader. Start with :func:`load_dataset`."""
from .errors import DataError
from .loader import make_loader
from .sources import load_dataset
from .split import DataBundle, Split

__all__ = ["DataError", "DataBundle", "Split", "load_dataset", "make_loader"]
