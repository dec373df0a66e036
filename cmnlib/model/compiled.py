"""Small element-wise kernels fused by ``torch.compile`` where a compiler is present, for
the low-precision (bf16) step only.

A mixed-precision step spends much of its non-GEMM time in chains of element-wise passes
over memory (MCAN's LayerNorm in float32 is ten of them, forward and backward). Compiling
such a chain into one kernel pays; compiling the whole model did not (102 s to compile and a
slower step on CPU, see the README). So only named, shape-polymorphic functions are
compiled (``dynamic=True``: one compilation serves every batch size and length bucket),
once per process, on first use.

Fallback: where compilation fails (no C++ compiler on the CPU, no Triton on a GPU, a
platform without TorchDynamo) the eager function runs instead, after one warning; the
result is the same function up to float rounding. ``CMN_COMPILE=0`` in the environment
skips compilation altogether. float32 steps call the same functions eagerly, never
compiled, so fp32 runs keep their bits.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable

import torch

__all__ = ["fused", "compilation_enabled", "status", "summary"]

_REGISTRY: list["_Fused"] = []


def compilation_enabled() -> bool:
    """False when ``CMN_COMPILE=0`` (or ``false``/``no``) is set: every fused kernel runs eagerly."""
    return os.environ.get("CMN_COMPILE", "1").strip().lower() not in ("0", "false", "no")


class _Fused:
    """``fn`` compiled on first call, or ``fn`` itself where compiling is off or fails."""

    def __init__(self, fn: Callable):
        self.eager = fn
        self.__name__ = getattr(fn, "__name__", "kernel")
        self.__doc__ = fn.__doc__
        self._compiled: Callable | None = None
        self._failure = ""  # why compiling failed, once it has

    def __call__(self, *args):
        if self._failure or not compilation_enabled():
            return self.eager(*args)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.eager, dynamic=True)
            return self._compiled(*args)
        except (torch._dynamo.exc.TorchDynamoException, RuntimeError) as error:
            if not isinstance(error, torch._dynamo.exc.TorchDynamoException) and self._compiled is not None:
                raise  # a RuntimeError from running the compiled kernel is a real error
            first_line = (str(error).splitlines() or [""])[0][:200]
            self._failure = f"{type(error).__name__}: {first_line}"
            warnings.warn(f"torch.compile is not available for {self.__name__} ({self._failure}); running it "
                          "eagerly", RuntimeWarning, stacklevel=2)
            return self.eager(*args)

    def state(self) -> str:
        """'compiled', 'eager (<why>)' or 'not called yet'."""
        if self._failure:
            return f"eager ({self._failure})"
        if not compilation_enabled():
            return "eager (CMN_COMPILE=0)"
        return "compiled" if self._compiled is not None else "not called yet"


def fused(fn: Callable) -> _Fused:
    """Decorator: ``fn`` as a fused kernel (see the module docstring)."""
    kernel = _Fused(fn)
    _REGISTRY.append(kernel)
    return kernel


def status() -> dict[str, str]:
    """Each fused kernel of this process by qualified name -> :meth:`_Fused.state`."""
    return {f"{k.eager.__module__}.{k.__name__}": k.state() for k in _REGISTRY}


def summary() -> str:
    """One line for run summaries and reports: how the kernels that ran in this process ran,
    e.g. 'compiled' or 'eager (CMN_COMPILE=0)'; 'not used' when none was called."""
    used = sorted({state for state in status().values() if state != "not called yet"})
    return "; ".join(used) if used else "not used"
