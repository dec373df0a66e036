"""Numeric precision of training and inference: ``fp32`` (the default, every number in
float32) or ``bf16`` (mixed precision: matrix products in bfloat16 under
``torch.autocast``; weights, optimizer state, the loss, softmax and LayerNorm statistics
in float32), and ``auto``, which picks bf16 where the hardware has bfloat16 matrix units
(an NVIDIA GPU, or a CPU with Intel AMX) and fp32 elsewhere.

A CPU with AVX512-BF16 but no AMX (this project's AMD EPYC machines, for example) has bf16
dot-product instructions, not matrix units; ``auto`` keeps fp32 there, and ``bf16`` can
still be asked for explicitly.
"""
from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

from .config import PRECISIONS


def cpu_flags() -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_features() -> dict[str, bool]:
    """What the CPU offers for the kernels that matter here."""
    flags = cpu_flags()
    return {"AVX2": "avx2" in flags, "AVX-512": "avx512f" in flags, "AVX512-BF16": "avx512_bf16" in flags,
            "AMX-BF16": "amx_bf16" in flags}


def machine_description() -> str:
    """This CPU in one line, for the numbers it produces: its model name, the cores torch
    sees and its matrix features, e.g. 'AMD EPYC, 2 cores, AVX-512, AVX512-BF16, no AMX'."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    features = cpu_features()
    listed = [f for f in ("AVX-512", "AVX512-BF16", "AMX-BF16") if features[f]]
    listed += [] if features["AMX-BF16"] else ["no AMX"]
    return ", ".join([name, f"{os.cpu_count()} cores", *listed])


def bf16_matrix_units(device: str = "cpu") -> bool:
    """True on a CUDA device with bf16 support, or a CPU with AMX-BF16 tiles."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_features()["AMX-BF16"]


def resolve(precision: str, device: str = "cpu") -> str:
    """``fp32`` or ``bf16`` for a requested ``precision`` (``auto``: :func:`bf16_matrix_units`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_matrix_units(device) else "fp32"
    return precision


def autocast(precision: str, device: str = "cpu"):
    """The context a forward pass runs in: ``torch.autocast`` to bfloat16 for ``bf16``,
    nothing for ``fp32``."""
    if resolve(precision, device) == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def adam(parameters, precision: str, lr: float, weight_decay: float = 0.0, device: str = "cpu") -> torch.optim.Adam:
    """Adam as a run of ``precision`` steps it: the fused implementation, one vectorised
    kernel over all parameters instead of a loop of small element-wise operations per
    tensor (3x faster on the paper profile: 13.6 against 39 ms per step, AMD EPYC Zen 5, one
    thread; in the quick CMN (L+A) step it removes 2,050 of 8,190 operator calls, 19 for
    each of 108 parameters). Both compute Adam and differ only in the last bits. Trainer
    version 2 stepped float32 runs with the loop (:func:`per_tensor_fp32_adam`, kept for
    the benchmark's side-by-side)."""
    fused = resolve(precision, device) == "bf16" or (
        not _PER_TENSOR_FP32_ADAM and torch.device(device).type in ("cpu", "cuda"))  # where torch has it
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=fused or None)


# trainer version 2's float32 Adam (the per-tensor loop), for the benchmark's side-by-side
_PER_TENSOR_FP32_ADAM = False


@contextlib.contextmanager
def per_tensor_fp32_adam(enabled: bool = True):
    """Within the block, :func:`adam` gives float32 runs trainer version 2's Adam (the
    per-tensor loop). Only :func:`cmnlib.train.trainer_step` uses it, to time the two
    versions side by side; runs are never trained under it."""
    global _PER_TENSOR_FP32_ADAM
    before, _PER_TENSOR_FP32_ADAM = _PER_TENSOR_FP32_ADAM, enabled
    try:
        yield
    finally:
        _PER_TENSOR_FP32_ADAM = before


def per_tensor_fp32_adam_active() -> bool:
    """Whether :func:`adam` gives float32 runs the per-tensor loop (inside :func:`per_tensor_fp32_adam`)."""
    return _PER_TENSOR_FP32_ADAM
