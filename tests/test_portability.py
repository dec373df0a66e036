"""The second numeric environment of ``make test`` changes trained bits (so its strict nbval
pass is not vacuous), reaches the notebook kernels, and one environment repeats its bits
exactly (same seed, same machine: bit-identical)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from cmnlib import numerics


def _probe(env: dict | None = None) -> list[str]:
    env = without_numerics() if env is None else env
    out = subprocess.run([sys.executable, "-m", "cmnlib.numerics", "probe", "--steps", "3"], env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    return out.stdout.split()


def _close(bits: list[str], reference: list[str]) -> bool:
    """The same numbers to float precision: other rounding, not another computation."""
    return all(abs(float.fromhex(a) - float.fromhex(b)) < 1e-4 * abs(float.fromhex(b)) for a, b in zip(bits, reference))


def test_same_seed_same_environment_is_bit_identical_and_each_part_of_the_alternate_changes_the_bits():
    first, second = _probe(), _probe()
    assert len(first) == 3 and all(bits.startswith("0x1.") for bits in first)
    assert first == second  # deterministic: every bit of every loss repeats
    nudged = _probe(numerics.alternate_environ(without_numerics(), kernels=False))
    assert nudged != first, "nudging the initial weights left the loss bits as they were: its runs would prove nothing"
    assert _close(nudged, first)
    if platform.machine().lower() not in numerics.X86:
        pytest.skip(f"the other kernels of a {platform.machine()} CPU may not move (the nudged weights did, above)")
    other_kernels = _probe({**without_numerics(), **numerics.kernel_settings()})
    assert other_kernels != first, ("the other kernels gave the same loss bits as the default: the notebooks' own "
                                    "computations would not be checked on other rounding on this CPU")
    assert _close(other_kernels, first)


def test_run_sets_the_alternate_environment_for_the_command():
    def run(*options):
        return subprocess.run([sys.executable, "-m", "cmnlib.numerics", "run", *options, "--", sys.executable, "-c",
                               "import os; print(' '.join(os.environ.get(k, '-') for k in "
                               "('CMN_NUDGE_INITIAL_WEIGHTS', 'ATEN_CPU_CAPABILITY')))"],
                              capture_output=True, text=True, check=True, timeout=60, env=without_numerics())
    settings = numerics.kernel_settings()
    both = run()
    assert both.stdout.split() == ["1", settings["ATEN_CPU_CAPABILITY"]]
    assert f"ATEN_CPU_CAPABILITY={settings['ATEN_CPU_CAPABILITY']}" in both.stderr
    assert both.stderr.startswith("numeric environment: CMN_NUDGE_INITIAL_WEIGHTS=1")
    weights = run("--weights-only")  # the guard's training: the nudge alone, the default kernels
    assert weights.stdout.split() == ["1", "-"]
    assert weights.stderr.strip() == "numeric environment: CMN_NUDGE_INITIAL_WEIGHTS=1"


def without_numerics() -> dict:
    """This process's environment without the second environment's kernels and nudge (a test
    may run under them); its thread count stays (tests/conftest.py sets one per worker)."""
    keys = {*numerics.BELOW_AVX512, *numerics.BELOW_AVX2, *numerics.NUDGE} - {"OMP_NUM_THREADS"}
    return {k: v for k, v in os.environ.items() if k not in keys}


def test_the_other_kernels_are_one_vector_width_below_the_cpus():
    assert numerics.kernel_settings({"avx2", "avx512f", "fma"}, "x86_64")["ATEN_CPU_CAPABILITY"] == "avx2"
    assert numerics.kernel_settings({"avx2", "avx512f"}, "x86_64")["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    assert numerics.kernel_settings({"avx2", "fma"}, "x86_64")["ATEN_CPU_CAPABILITY"] == "default"  # AVX2-only CPUs
    assert numerics.kernel_settings(set(), "AMD64")["ONEDNN_MAX_CPU_ISA"] == "SSE41"
    # an ARM CPU has no x86 kernel libraries to move: ATen's default kernels and one thread
    assert numerics.kernel_settings(set(), "aarch64") == {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
    assert all(s["OMP_NUM_THREADS"] == "1" for s in (numerics.BELOW_AVX512, numerics.BELOW_AVX2,
                                                     numerics.OTHER_ARCHITECTURE))
    assert numerics.alternate_settings({"avx512f"}, "x86_64") == {"CMN_NUDGE_INITIAL_WEIGHTS": "1",
                                                                   **numerics.BELOW_AVX512}
    assert numerics.alternate_settings(kernels=False) == {"CMN_NUDGE_INITIAL_WEIGHTS": "1"}


def test_a_notebook_kernel_inherits_the_environment_and_runs_on_the_other_kernels(monkeypatch):
    """nbval starts kernels from the test process's environment: under ``numerics run`` they
    see the alternate settings, and torch inside them dispatches to the other kernels."""
    settings = numerics.kernel_settings()
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import os, torch\nprint(os.environ['ATEN_CPU_CAPABILITY'], torch.backends.cpu.get_cpu_capability())"))
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    printed = nb.cells[0].outputs[0]["text"].split()
    assert printed[0] == settings["ATEN_CPU_CAPABILITY"] and printed[1] == settings["ATEN_CPU_CAPABILITY"].upper()
