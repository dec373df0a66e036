"""Command-line options, each defined once: ``cmn train``, ``torchrun -m cmnlib.distributed``
and ``cmn bench`` / ``python -m cmnlib.bench`` add the groups they share from here. Choices
come from the registry (:mod:`cmnlib.config`). Light on purpose: argparse and the registry
only, so that ``cmn --help`` loads nothing heavy."""
from __future__ import annotations

import argparse

from . import config


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more (argparse then prints one usage line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def add_data_options(parser: argparse.ArgumentParser, dataset_default: str | None = None) -> None:
    """--dataset (required unless ``dataset_default``), --data, --scale."""
    parser.add_argument("--dataset", choices=list(config.DATASETS), required=dataset_default is None,
                        default=dataset_default)
    parser.add_argument("--data", default="synthetic", help="'synthetic' (default) or a path to real files")
    parser.add_argument("--scale", choices=["quick", "paper"], default="quick", help="synthetic data size")


DEFAULT_MODALITIES = "LA"  # the paper's CMN


def choose_modalities(model: str, requested: str | None, available: tuple[str, ...], data: str) -> tuple[str, str]:
    """The modalities to train ``model`` on, given the ``available`` modalities of the data
    (names: 'text', 'audio', 'vision') and ``requested`` (--modalities, None when not
    given), with a line that says what was chosen. Not given: the default subset cut to
    what the data has. Given, or a unimodal LSTM, and the data lacks a modality: a
    ValueError whose one line names ``data``, the missing modality and the flag to change."""
    has = "".join(letter for letter, name in config.LETTER_TO_MODALITY.items() if name in available)
    words = " and ".join(config.LETTER_TO_MODALITY[letter] for letter in has) or "nothing"
    if model in config.UNIMODAL_MODELS:
        own = config.UNIMODAL_MODELS[model]
        if own not in has:
            wanted = config.LETTER_TO_MODALITY[own]
            others = ", ".join(f"--model {m}" for m, letter in config.UNIMODAL_MODELS.items() if letter in has)
            raise ValueError(f"{model} reads {wanted}, and {data} has {words} only; use {others or 'other data'}")
        return own, f"{model} reads {config.LETTER_TO_MODALITY[own]}"
    wanted = requested if requested is not None else DEFAULT_MODALITIES
    missing = [letter for letter in wanted.upper() if letter not in has]
    if not missing:
        return wanted, f"modalities {wanted}"
    if requested is not None:
        lacking = " and ".join(config.LETTER_TO_MODALITY.get(m, m) for m in missing)
        raise ValueError(f"--modalities {requested} asks for {lacking}, which {data} does not have (it has {words}); "
                         f"use --modalities {''.join(m for m in requested.upper() if m in has) or has}")
    chosen = "".join(m for m in wanted if m in has) or has
    return chosen, f"modalities {chosen}: the data has {words} only (--modalities to choose)"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --modalities, --head, --profile, --set KEY=VALUE, --epochs, --lr."""
    parser.add_argument("--model", choices=list(config.MODEL_NAMES), default="cmn")
    parser.add_argument("--modalities", default=None,
                        help=f"subset of LAV for cmn, mult and ef_lstm (default: {DEFAULT_MODALITIES}, or those of "
                             f"{DEFAULT_MODALITIES} the data has; the unimodal LSTMs read their own)")
    parser.add_argument("--head", choices=["regression", "binary", "4class", "binary4"], default=None,
                        help="default: regression for MOSEI, MOSI and CH-SIMS, 4class for IEMOCAP")
    parser.add_argument("--profile", choices=list(config.PROFILES), default="quick")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="model config field, e.g. --set mua=symmetric --set hidden=256")
    parser.add_argument("--epochs", type=positive_int, default=None, help="default: the profile's")
    parser.add_argument("--lr", type=positive_float, default=None, help="default: the profile's")


def add_precision_option(parser: argparse.ArgumentParser, default: str | None = "fp32") -> None:
    """--precision fp32 | bf16 | auto (bf16 where the hardware has bf16 matrix units)."""
    parser.add_argument("--precision", choices=config.PRECISIONS, default=default,
                        help="fp32 (default), bf16 (mixed precision: matrix products in bfloat16, weights, "
                             "optimizer, loss, softmax and LayerNorm in float32; the LayerNorm is compiled by "
                             "torch.compile, "
                             "CMN_COMPILE=0 skips that) or auto (bf16 on CUDA and on CPUs with AMX, fp32 elsewhere)")


def add_bench_options(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (``cmn bench`` and ``python -m cmnlib.bench``)."""
    parser.add_argument("--out", default=None, help="output folder (bench.json, bench.md; default: reports/bench "
                        "under $CMN_HOME, the checkout or this folder)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke version (paper profile at one length, fewer steps; ~1.5 min on 2 cores)")
    parser.add_argument("--paper-data", action="store_true",
                        help="also time the paper-scale MOSEI-like set (first run: minutes, ~4 GB of disk)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--precision", choices=config.PRECISIONS, default="auto",
                        help="auto (default): fp32, plus bf16 where the CPU has bf16 matrix units (AMX); "
                             "bf16: both anyway; fp32: fp32 only")
    parser.add_argument("--parity", action="store_true",
                        help="instead of timing: train CMN (L+A) in fp32 and bf16 with the same seeds on both "
                             "synthetic sets and judge, by two one-sided paired tests against the study's declared "
                             "1-point margin, whether they are equivalent (parity.md)")
    parser.add_argument("--parity-seeds", type=positive_int, default=None,
                        help="seeds per precision for --parity (default: the 20 the study declares; fix the number "
                             "before running, never add seeds after looking at the result)")
    parser.add_argument("--seeds-timing", type=positive_int, default=None, metavar="N",
                        help="instead of the benchmark: train N paper-profile CMN seeds on the paper-size MOSEI-like "
                             "set concurrently on --device and time them (seeds.md); the target is 10 seeds in "
                             "10 minutes on one H100")
    parser.add_argument("--stack-timing", type=positive_int, default=None, metavar="K",
                        help="instead of the benchmark: K paper-profile CMN seeds as one stacked computation against "
                             "the same seeds one at a time, a few steps each way on --device (stacked.md): the "
                             "prepared GPU smoke run")
    parser.add_argument("--device", default="cuda",
                        help="device for --seeds-timing and --stack-timing (default cuda; cpu to try the path)")
    parser.add_argument("--page", default=None, metavar="PAGE",
                        help="instead of timing: write the run in --out (its bench.json) into the generated part of "
                             "PAGE (docs/performance.md: `make bench-page`) and copy it beside PAGE as bench.json")
    parser.add_argument("--processes", type=positive_int, default=None,
                        help="--seeds-timing: seeds trained at a time (default: all of them)")
