"""Write a file whole or not at all: into a temporary file in the same folder, then one
rename over the target (atomic on POSIX and Windows). A crash, a full disk or an exception
half-way leaves the earlier file (or none) in place and no temporary file behind.

Every writer of a file that must never be seen half-written (caches, checkpoints, run
results, records, generated data) goes through :func:`atomic_write`. Imports nothing from
cmnlib, so every layer may use it.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it over
    ``path``; on any exception the temporary file is removed and the exception raised.
    The parent folder is created when missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _plain_mode(path))  # mkstemp's 0600 would hide reports from the group
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _plain_mode(path: Path) -> int:
    """The permissions of the file being replaced, or, for a new file, those a plain
    ``open(path, 'w')`` would give it (0o666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # the only way to read it; set back at once
        os.umask(umask)
        return 0o666 & ~umask


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``data`` to ``path``, atomically. Serialising into memory first and writing the bytes
    here makes a full disk an ``OSError(ENOSPC)`` naming the file (torch.save straight to a
    file reports it as a RuntimeError from its zip writer)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    try:
        return atomic_write(path, write)
    except OSError as error:
        if error.filename is None:
            error.filename = str(path)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """``text`` (UTF-8) to ``path``, atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj, indent: int | None = 1) -> Path:
    """``obj`` as JSON (numpy and torch scalars as floats, one trailing newline), atomically."""
    return write_text(path, json.dumps(obj, indent=indent, default=float) + "\n")


class DerivedFileWarning(UserWarning):
    """A file the program made (a cache, a checkpoint, a run result) could not be read; it
    was set aside and will be rebuilt."""


def set_aside(path: str | Path, why: str) -> Path:
    """Rename an unreadable derived file to ``<name>.broken`` (``.broken-2``, ... when that
    exists: nothing is deleted) and warn once, naming the file, why, and where it went; the
    caller then rebuilds it. Returns the new path."""
    import warnings
    path = Path(path)
    target = path.with_name(path.name + ".broken")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.broken-{n}")
    os.replace(path, target)
    warnings.warn(DerivedFileWarning(f"{path}: {why}; set aside as {target.name} and rebuilt"), stacklevel=3)
    return target
