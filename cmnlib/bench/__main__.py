"""``python -m cmnlib.bench``: the same as ``python -m cmnlib bench``."""
import sys

from . import main

sys.exit(main())
