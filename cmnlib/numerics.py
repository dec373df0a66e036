"""A second numeric environment: the same code on other CPU kernels, to show portability.

A reader's CPU rounds some sums differently from the CPU that produced the committed
notebook outputs (other GEMM kernels, vector widths, thread counts), and training grows
those last-bit differences into other trained weights. ``make test`` therefore executes
the notebooks under :func:`alternate_settings` (``make nbval-default`` runs them as they
are), which moves every kernel family the models use onto another code path: one vector
width below the one the CPU runs by default, so that the pass is as different as needed
and no slower than it must be.

* On a CPU with AVX-512 (:data:`BELOW_AVX512`): ``ATEN_CPU_CAPABILITY=avx2`` (ATen's
  element-wise, reduction and softmax kernels with 256-bit vectors: other summation
  orders), ``MKL_ENABLE_INSTRUCTIONS=AVX2`` (MKL's matrix products with AVX2 kernels, other
  blockings), ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN's LSTM and convolutions likewise);
* on any other x86-64 CPU (:data:`BELOW_AVX2`): ``ATEN_CPU_CAPABILITY=default`` (no
  AVX2), ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``, ``ONEDNN_MAX_CPU_ISA=SSE41``;
* both: ``OMP_NUM_THREADS=1``, one thread where the default runs one per core.

Strict nbval must pass under both: a notebook output that depends on trained weights and
is still compared as text fails there. :func:`loss_bits` trains a small CMN for a few steps
and returns its losses bit for bit; a test runs it in both environments and checks that
the bits differ (so the second pass is not vacuous) and that one environment repeats them
exactly (determinism).

    python -m cmnlib.numerics probe                  # loss bits in this environment
    python -m cmnlib.numerics run -- CMD [ARGS ...]  # CMD under the alternate environment
"""
from __future__ import annotations

import argparse
import os
import sys

from .options import positive_int  # torch-free: the environment must be set before torch loads

BELOW_AVX512 = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OMP_NUM_THREADS": "1",
}
BELOW_AVX2 = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "OMP_NUM_THREADS": "1",
}


def cpu_flags() -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where it does not exist). Read here
    without torch: the environment must be set before torch loads."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def alternate_settings(flags: set[str] | None = None) -> dict:
    """The second environment for a CPU with ``flags`` (default: this one's): one vector
    width below its default kernels."""
    flags = cpu_flags() if flags is None else flags
    return dict(BELOW_AVX512 if "avx512f" in flags else BELOW_AVX2)


def alternate_environ(base: dict | None = None) -> dict:
    """``base`` (default: this process's environment) with :func:`alternate_settings` applied."""
    return {**(os.environ if base is None else base), **alternate_settings()}


def loss_bits(steps: int = 3, seed: int = 0) -> list[str]:
    """Train a quick-profile CMN (L+A, MOSEI-sized inputs, batch 32) for ``steps`` Adam
    steps on seeded random data; return each step's loss as ``float.hex`` (every bit)."""
    import torch  # here, not at module level: the environment must be set before torch loads

    from .config import DATASETS, DEFAULT_DATASET  # after torch, for the same reason
    from .model import build_model
    from .train import train_step

    torch.manual_seed(seed)
    dims = {m: DATASETS[DEFAULT_DATASET].feature_dims[m] for m in ("text", "audio")}
    model = build_model("cmn", "regression", dims, "LA", "quick")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch, length = 32, 20
    data = {"features": {m: torch.randn(batch, length, d) for m, d in dims.items()},
            "lengths": {m: torch.randint(5, length + 1, (batch,)) for m in dims},
            "target": torch.randn(batch)}
    # the trainer's own step, so the probe exercises the kernels training uses
    return [float(train_step(model, optimizer, "regression", data)).hex() for _ in range(steps)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cmnlib.numerics", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="print the loss bits of a few training steps in this environment")
    probe.add_argument("--steps", type=positive_int, default=3)
    run = sub.add_parser("run", help="run a command under the alternate numeric environment")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="the command (after --)")
    args = parser.parse_args(argv)
    if args.command == "probe":
        print(" ".join(loss_bits(args.steps)))
        return 0
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("run needs a command after --")
    print("numeric environment: " + " ".join(f"{k}={v}" for k, v in alternate_settings().items()), file=sys.stderr,
          flush=True)
    os.execvpe(command[0], command, alternate_environ())
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
