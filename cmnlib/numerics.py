"""A second numeric environment: the same code with other last bits, to show portability.

A reader's CPU rounds some sums differently from the CPU that produced the committed
notebook outputs (other GEMM kernels, vector widths, thread counts), and training grows
those last-bit differences into other trained weights. ``make test`` therefore executes
the notebooks in a second environment (``make nbval-default`` runs them as they are) with
two parts, each of which can be asked for alone:

* **Nudged initial weights** (:data:`NUDGE`, ``$CMN_NUDGE_INITIAL_WEIGHTS=1``): every run
  starts from weights one unit in the last place above its seed's
  (:func:`cmnlib.train.nudge_weights`), in run folders of their own (the nudge is part of
  the run's hash). Training grows that into other trained weights, as it grows another
  CPU's rounding: the test outputs of a quick CMN seed moved by as much as with the other
  kernels below (docs/evidence.md). It works on every CPU and costs nothing, so the guard's
  runs train under it alone, on this CPU's fastest kernels (``run --weights-only``).
* **Other kernels** (:func:`kernel_settings`), under which the notebooks themselves run, so
  that what they compute without training (data statistics, equations checked by hand,
  attention of fixed weights) is checked on other rounding too: every kernel family the
  models use moves to another code path, one vector width below the CPU's default.

  - On an x86 CPU with AVX-512 (:data:`BELOW_AVX512`): ``ATEN_CPU_CAPABILITY=avx2`` (ATen's
    element-wise, reduction and softmax kernels with 256-bit vectors: other summation
    orders), ``MKL_ENABLE_INSTRUCTIONS=AVX2`` (MKL's matrix products with AVX2 kernels,
    other blockings), ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN's LSTM and convolutions likewise);
  - on any other x86-64 CPU (:data:`BELOW_AVX2`): ``ATEN_CPU_CAPABILITY=default`` (no AVX2),
    ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``, ``ONEDNN_MAX_CPU_ISA=SSE41``;
  - on other architectures (:data:`OTHER_ARCHITECTURE`, e.g. ARM): ATen's default kernels
    only, which move where the CPU has wider ones (SVE) and may not move elsewhere; the
    nudged weights make the check bite there all the same;
  - everywhere: ``OMP_NUM_THREADS=1``, one thread where the default runs one per core.

Strict nbval must pass under both: a notebook output that depends on trained weights and
is still compared as text fails there. :func:`loss_bits` trains a small CMN for a few steps
and returns its losses bit for bit; a test runs it in each environment and checks that the
bits differ (so the second pass is not vacuous) and that one environment repeats them
exactly (determinism).

    python -m cmnlib.numerics probe                                 # loss bits here
    python -m cmnlib.numerics run -- CMD [ARGS ...]                 # CMD in the second environment
    python -m cmnlib.numerics run --weights-only -- CMD [ARGS ...]  # its nudged weights alone
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

# torch-free, both: the environment must be set before torch loads
from .config import NUDGE_ENV
from .options import positive_int

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
OTHER_ARCHITECTURE = {
    "ATEN_CPU_CAPABILITY": "default",
    "OMP_NUM_THREADS": "1",
}
NUDGE = {NUDGE_ENV: "1"}
X86 = ("x86_64", "amd64", "i386", "i686")


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


def kernel_settings(flags: set[str] | None = None, machine: str | None = None) -> dict:
    """The other kernels for a CPU with ``flags`` and architecture ``machine`` (default: this
    one's): one vector width below its default ones."""
    flags = cpu_flags() if flags is None else flags
    machine = platform.machine() if machine is None else machine
    if machine.lower() not in X86:
        return dict(OTHER_ARCHITECTURE)
    return dict(BELOW_AVX512 if "avx512f" in flags else BELOW_AVX2)


def alternate_settings(flags: set[str] | None = None, machine: str | None = None, kernels: bool = True) -> dict:
    """The second environment: the nudged initial weights, and with ``kernels`` the other
    kernels of :func:`kernel_settings`."""
    return {**NUDGE, **(kernel_settings(flags, machine) if kernels else {})}


def alternate_environ(base: dict | None = None, kernels: bool = True) -> dict:
    """``base`` (default: this process's environment) with :func:`alternate_settings` applied."""
    return {**(os.environ if base is None else base), **alternate_settings(kernels=kernels)}


def loss_bits(steps: int = 3, seed: int = 0) -> list[str]:
    """Train a quick-profile CMN (L+A, MOSEI-sized inputs, batch 32) for ``steps`` Adam
    steps on seeded random data; return each step's loss as ``float.hex`` (every bit)."""
    import torch  # here, not at module level: the environment must be set before torch loads

    from .config import DATASETS, DEFAULT_DATASET, weights_nudged  # after torch, for the same reason
    from .model import build_model
    from .train import nudge_weights, train_step

    torch.manual_seed(seed)
    dims = {m: DATASETS[DEFAULT_DATASET].feature_dims[m] for m in ("text", "audio")}
    model = build_model("cmn", "regression", dims, "LA", "quick")
    if weights_nudged():  # as every trainer starts (cmnlib.train.initial_model)
        nudge_weights(model)
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
    run.add_argument("--weights-only", action="store_true",
                     help="only the nudged initial weights, on this CPU's default kernels (for training)")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="the command (after --)")
    args = parser.parse_args(argv)
    if args.command == "probe":
        print(" ".join(loss_bits(args.steps)))
        return 0
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("run needs a command after --")
    kernels = not args.weights_only
    print("numeric environment: " + " ".join(f"{k}={v}" for k, v in alternate_settings(kernels=kernels).items()),
          file=sys.stderr, flush=True)
    os.execvpe(command[0], command, alternate_environ(kernels=kernels))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
