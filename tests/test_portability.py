"""The second numeric environment of ``make test`` changes trained bits (so its strict nbval
pass is not vacuous), reaches the notebook kernels, and one environment repeats its bits
exactly (same seed, same machine: bit-identical)."""
from __future__ import annotations

import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from cmnlib import numerics


def _probe(env: dict | None = None) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "cmnlib.numerics", "probe", "--steps", "3"], env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    return out.stdout.split()


def test_same_seed_same_environment_is_bit_identical_and_the_alternate_changes_the_bits():
    first, second = _probe(), _probe()
    assert len(first) == 3 and all(bits.startswith("0x1.") for bits in first)
    assert first == second  # deterministic: every bit of every loss repeats
    alternate = _probe(numerics.alternate_environ())
    assert alternate != first, ("the alternate numeric environment gave the same loss bits as the default; "
                                "its nbval pass would prove nothing on this CPU")
    # the same numbers to float precision: other rounding, not another computation
    assert all(abs(float.fromhex(a) - float.fromhex(b)) < 1e-4 * abs(float.fromhex(b))
               for a, b in zip(alternate, first))


def test_run_sets_the_alternate_environment_for_the_command():
    out = subprocess.run([sys.executable, "-m", "cmnlib.numerics", "run", "--", sys.executable, "-c",
                          "import os; print(' '.join(os.environ[k] for k in "
                          "('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA', 'OMP_NUM_THREADS')))"],
                         capture_output=True, text=True, check=True, timeout=60)
    settings = numerics.alternate_settings()
    assert out.stdout.split() == [settings[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS")]
    assert f"numeric environment: ATEN_CPU_CAPABILITY={settings['ATEN_CPU_CAPABILITY']}" in out.stderr


def test_the_alternate_environment_is_one_vector_width_below_the_cpus():
    assert numerics.alternate_settings({"avx2", "avx512f", "fma"})["ATEN_CPU_CAPABILITY"] == "avx2"
    assert numerics.alternate_settings({"avx2", "avx512f"})["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    assert numerics.alternate_settings({"avx2", "fma"})["ATEN_CPU_CAPABILITY"] == "default"  # AVX2-only CPUs
    assert numerics.alternate_settings(set())["ONEDNN_MAX_CPU_ISA"] == "SSE41"
    assert all(s["OMP_NUM_THREADS"] == "1" for s in (numerics.BELOW_AVX512, numerics.BELOW_AVX2))


def test_a_notebook_kernel_inherits_the_environment_and_runs_on_the_other_kernels(monkeypatch):
    """nbval starts kernels from the test process's environment: under ``numerics run`` they
    see the alternate settings, and torch inside them dispatches to the other kernels."""
    settings = numerics.alternate_settings()
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import os, torch\nprint(os.environ['ATEN_CPU_CAPABILITY'], torch.backends.cpu.get_cpu_capability())"))
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    printed = nb.cells[0].outputs[0]["text"].split()
    assert printed[0] == settings["ATEN_CPU_CAPABILITY"] and printed[1] == settings["ATEN_CPU_CAPABILITY"].upper()
