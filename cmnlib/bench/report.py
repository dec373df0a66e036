"""The benchmark's Markdown report (``bench.md``): the measurements of one run as tables
(``DataFrame.to_markdown``), each with the sentence that says how it was measured."""
from __future__ import annotations

import pandas as pd


def _f(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _table(rows: list[dict]) -> str:
    """Rows of display strings as a Markdown table; columns whose cells are numbers (or
    ratios, percentages, '-') are right-aligned."""
    frame = pd.DataFrame(rows)
    numeric = frame.apply(lambda c: c.astype(str).str.fullmatch(r"[-+]?[\d,.]+(e[-+]?\d+)?[x%]?|-").all())
    return frame.to_markdown(index=False, disable_numparse=True,  # the cells are formatted already
                             colalign=["right" if numeric[c] else "left" for c in frame.columns])


def _cfg(config: dict) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in config.items()) + ")"


def _kernels(measurement: dict) -> str:
    """How a measurement's fused kernels ran, in words."""
    state = measurement.get("fused_kernels", "not recorded")
    return {"compiled": "compiled by torch.compile", "not used": "not at all"}.get(state, state)


def markdown(results: dict) -> str:
    """The results as Markdown: the run's settings, then one table per measurement."""
    meta, gemm = results["meta"], results["gemm"]
    batch = str(meta["batch"])
    lines = [f"# cmnlib bench ({meta['mode']})", "",
             f"{meta.get('machine', 'machine not recorded')}, started {meta.get('started', '?')}; "
             f"torch {meta['torch']}, {meta['cpus']} CPUs, {meta['threads']} torch threads, {meta['dtype']}, "
             f"batch {meta['batch']}, modalities {meta['modalities']}, {meta['optimizer']}; "
             f"load average {meta['load_start']} at the start, {meta.get('load_end')} at the end; "
             f"{_f(meta.get('seconds'), 0)} s in all.", "",
             "CPU features: " + ", ".join(f"{k} {'yes' if v else 'no'}"
                                          for k, v in meta.get("cpu_features", {}).items())
             + f". Precisions measured: {meta.get('precision_note', 'fp32')}.", "",
             f"GEMM peak (torch.mm {gemm['n']}x{gemm['n']}): fp32 **{_f(gemm['gflops'])} GFLOP/s**"
             + (f", bf16 **{_f(results['gemm_bf16']['gflops'])} GFLOP/s** "
                f"({results['gemm_bf16']['gflops'] / gemm['gflops']:.1f}x)" if "gemm_bf16" in results else "")
             + ".", "",
             "## Training throughput, peak RSS, latency", "",
             "Each row in its own process (peak RSS = ru_maxrss of that process, torch included). "
             "Training step = forward, L1 loss, backward, Adam; median step. Latency: eval, no grad, median.", "",
             _table([{"model": r["model"], "implementation": r["impl"], "precision": r.get("precision", "fp32"),
                      "profile": r["profile"],
                      "text/audio length": f"{r['lengths'][0]}/{r['lengths'][1]}",
                      "samples/s": _f(r["samples_per_s"]), "step ms": _f(1e3 * r["step_s"], 0),
                      "peak RSS MiB": _f(r["peak_rss_mb"], 0), "latency b1 ms": _f(r["latency_ms"]["1"]),
                      f"latency b{batch} ms": _f(r["latency_ms"][batch]),
                      "fwd GFLOP/utt": _f(r["flops_per_utt"] / 1e9, 3), "train GFLOP/s": _f(r["train_gflops"]),
                      "of GEMM peak": f"{100 * r['gemm_fraction']:.0f}%"} for r in results["training"]]),
             "", "## CMN: fast (cmnlib) vs plain reference, same weights, same inputs", "",
             _table([{"profile": s["profile"], "text/audio length": f"{s['lengths'][0]}/{s['lengths'][1]}",
                      "max abs diff (eval)": f"{s['max_abs_diff_eval']:.2e}",
                      "speed-up, separate processes": f"{s['ratio_separate_processes']:.2f}x",
                      "speed-up, one process alternating": f"{s['ratio']:.2f}x",
                      "the two agree": ("yes" if s.get("ratios_agree") else "no (below)")
                      if "ratios_agree" in s else "-",
                      "step ms fast / reference": f"{_f(1e3 * s['step_s']['fast'], 0)} / "
                                                  f"{_f(1e3 * s['step_s']['reference'], 0)}"}
                     for s in results["speedup"]]) if results["speedup"] else "",
             *_agreement_lines(results, meta),
             "", "Outputs on small padded batches (eval), fast vs reference: max abs diff "
             + ", ".join(f"{_cfg(r['config'])} {r['max_abs_diff']:.1e}" for r in results["equality"]) + "."]
    profiled = [s for s in results["speedup"] if s.get("profile_s")]
    if profiled:
        s = profiled[0]
        kinds = list(dict.fromkeys(list(s["profile_s"]["reference"]) + list(s["profile_s"]["fast"])))
        lines += ["", f"Where one training step's time goes ({s['profile']}, {s['lengths'][0]}/{s['lengths'][1]}; "
                  "torch.profiler self CPU time of the operators on the calling thread, seconds):", "",
                  _table([{"kind": k, "reference": f"{s['profile_s']['reference'].get(k, 0):.3f}",
                           "fast": f"{s['profile_s']['fast'].get(k, 0):.3f}"} for k in kinds])]
    lines += _quick_section(results)
    lines += ["", "## Cost against sequence length (forward + backward per batch)", "",
              _table([{"model": r["model"], "text": str(r["text_length"]), "audio": str(r["audio_length"]),
                       "s per batch": f"{r['fwd_bwd_s']:.3f}", "relative to the first": f"{r['relative']:.1f}x"}
                      for r in results["scaling"]]),
              "", "## Data", "",
              _table([{"set": d["source"], "first call s": f"{d['first_call_s']:.2f}",
                       "cache load s (second call)": f"{d['cache_load_s']:.2f}", "cache MiB": _f(d["cache_mb"], 0),
                       "train rows": str(d["sizes"]["train"]),
                       "loader samples/s plain": _f(d["loader_samples_per_s"]["plain"], 0),
                       "loader samples/s bucketed": _f(d["loader_samples_per_s"]["bucketed"], 0)}
                      for d in results["data"]]),
              "", "The first call generates the set and builds the cache when they are missing, else it too reads "
              "the cache; nothing is extrapolated."]
    e = results["epoch"]
    rows = [("plain reference", "shuffled, trimmed to the longest row", "reference"),
            ("cmnlib (fast)", "shuffled, trimmed to the longest row", "fast_plain"),
            ("cmnlib (fast)", "trainer's length buckets", "fast")]
    lines += ["", f"## Training on a train split (CMN {e['profile']}, batch {e['batch']})", "",
              f"Data: {e['source']}.",
              "Batches timed: a stratified sample of one epoch (evenly spaced quantiles of padded length).", "",
              _table([{"implementation": impl, "batches": how,
                       "mean padded length: epoch / timed": f"{e['mean_padded_length_epoch'][key]:.1f} / "
                                                            f"{e['mean_padded_length_timed'][key]:.1f}",
                       "batches timed": str(e["batches_timed"][key]), "samples/s": _f(e["samples_per_s"][key])}
                      for impl, how, key in rows if key in e["samples_per_s"]]), "",
              f"Speed-up as a trainer sees it (fast CMN on bucketed batches vs the plain reference on plain "
              f"batches): **{_f(e['ratio'], 2)}x**.", ""]
    bf16 = [r for r in results["training"] if r.get("precision") == "bf16"]
    if bf16:
        reference = {(r["profile"], tuple(r["lengths"])): r["samples_per_s"] for r in results["training"]
                     if r["kind"] == "reference"}
        lines += ["## bf16 against the 3x target", "",
                  "Target: the fast CMN in bf16 (mixed precision) at 3x or more the samples/s of the plain "
                  "reference CMN in fp32, on a CPU with bf16 matrix units. Measured in this run (separate "
                  "processes, median step):", "",
                  _table([{"profile": r["profile"], "text/audio length": f"{r['lengths'][0]}/{r['lengths'][1]}",
                           "bf16 samples/s": _f(r["samples_per_s"]),
                           "reference fp32 samples/s": _f(reference[(r["profile"], tuple(r["lengths"]))]),
                           "ratio": f"{r['samples_per_s'] / reference[(r['profile'], tuple(r['lengths']))]:.2f}x",
                           "3x met": "yes" if r["samples_per_s"] >= 3 * reference[(r["profile"], tuple(r["lengths"]))]
                           else "no"} for r in bf16]), "",
                  f"{meta.get('precision_note', '')}.", ""]
        for s in results.get("speedup_bf16", []):
            lines += [f"The same comparison in one process, steps alternating ({s['profile']}, "
                      f"{s['lengths'][0]}/{s['lengths'][1]}; less sensitive to other load): bf16 step "
                      f"{_f(1e3 * s['step_s']['fast'], 0)} ms against {_f(1e3 * s['step_s']['reference'], 0)} ms, "
                      f"**{s['ratio']:.2f}x** (3x {'met' if s['ratio'] >= 3 else 'not met'} this way). "
                      f"The bf16 step's fused kernels (MCAN LayerNorm) ran {_kernels(s)}.", ""]
            if "ratios_agree" in s:
                lines += [_agreement_sentence([s], meta).strip(), ""]
            if s.get("profile_s"):
                kinds = list(dict.fromkeys(list(s["profile_s"]["fast"]) + list(s["profile_s"]["reference"])))
                total = sum(s["profile_s"]["fast"].values()) or 1.0
                lines += ["Where the bf16 step's time goes (torch.profiler self CPU time on the calling thread, "
                          "seconds; share of the bf16 step):", "",
                          _table([{"kind": k, "reference fp32": f"{s['profile_s']['reference'].get(k, 0):.3f}",
                                   "fast bf16": f"{s['profile_s']['fast'].get(k, 0):.3f}",
                                   "share of bf16": f"{100 * s['profile_s']['fast'].get(k, 0) / total:.0f}%"}
                                  for k in kinds]), ""]
    first = results["speedup"][0] if results["speedup"] else None
    if first:
        lines += ["## Against the target", "",
                  f"Target: CMN {first['profile']}-profile training at least 2x the plain reference. "
                  f"Measured here: the model alone on the same fixed batches "
                  + ", ".join(f"{s['lengths'][0]}/{s['lengths'][1]} {s['ratio']:.2f}x" for s in results["speedup"]
                              if s["profile"] == first["profile"])
                  + f" (one process, steps alternating); training on the data as the trainer does it "
                  f"{_f(e['ratio'], 2)}x.", ""]
    return "\n".join(lines)


def _quick_section(results: dict) -> list[str]:
    """The quick profile's training steps, per model, and the notebooks' times."""
    quick = results.get("quick_profile")
    if not quick:
        return []
    rows = quick["rows"]
    kinds = list(dict.fromkeys(k for r in rows for k in r["profile_s"]))
    lines = ["", "## The quick profile: the steps the notebooks train", "",
             "Each model in its own process, one thread (as the trainer's workers run), on its real length-bucketed "
             f"batches of the MOSEI-like quick train split; median step. GEMM peak with one thread: "
             f"**{_f(quick['gemm_peak_1thread'])} GFLOP/s**. 'batch 4 / batch 64' is the share of the step that "
             "does not shrink with the batch (the cost per operator, not per sample).", "",
             _table([{"model": f"{r['model']} ({r['modalities']})", "step ms": _f(1e3 * r["step_s"]),
                      "samples/s": _f(r["samples_per_s"], 0), "batch 4 / batch 64": f"{100 * r['fixed_share']:.0f}%",
                      "of GEMM peak": f"{100 * r['gemm_fraction']:.0f}%",
                      "one epoch s": _f(r["epoch_s"]), "mean lengths": ", ".join(
                          f"{m[0].upper()} {t}" for m, t in r["mean_lengths"].items())} for r in rows]), "",
             "Where each step's time goes (torch.profiler self CPU time by kind of operator, share of the step):", "",
             _table([{"kind": k, **{f"{r['model']} ({r['modalities']})":
                                    f"{100 * r['profile_s'].get(k, 0) / (sum(r['profile_s'].values()) or 1):.0f}%"
                                    for r in rows}} for k in kinds])]
    if quick.get("stacked"):
        lines += ["", "Stacked seeds against one seed at a time (`cmn train --stack K`, `$CMN_STACK`): K seeds of "
                  "the model as one computation, each seed on its own length-bucketed batches (the stacked batch "
                  "padded to the most rows and steps among them), against the same K seeds trained one after "
                  "another on the same batches; one process, one thread, steps alternating; median seconds per "
                  "seed and step, and their ratio, which is the ratio of seeds per minute (above 1: stacking pays). "
                  "Models without a stacked form are not listed.", "",
                  _table([{"model": f"{r['model']} ({r['modalities']})", "seeds stacked": r["stack"],
                           "ms per seed-step, one at a time": _f(1e3 * r["seed_step_s_separate"]),
                           "ms per seed-step, stacked": _f(1e3 * r["seed_step_s_stacked"]),
                           "seeds per minute, stacked / one at a time": f"{r['speedup']:.2f}x",
                           "range over steps": f"{r['speedup_range'][0]:.2f}-{r['speedup_range'][1]:.2f}x"}
                          for r in quick["stacked"]])]
    if quick.get("step_versions"):
        versions = quick["step_versions"]
        lines += ["", f"Today's float32 step (trainer version {versions[0]['versions'][1]}: fused Adam, dropout masks "
                  f"from 16-bit draws, MulT's too) against trainer version {versions[0]['versions'][0]}'s (Adam's "
                  "per-tensor loop, `torch.rand` masks, MulT's official `F.dropout`): the same model built twice, "
                  "each with its own Adam, stepping the same batches; one process, one thread, steps alternating; "
                  "median step each way, and their ratio, which is the ratio of seeds per minute (above 1: today's "
                  "is faster).", "",
                  _table([{"model": f"{r['model']} ({r['modalities']})", "steps": r["steps"],
                           f"step ms, version {r['versions'][0]}": _f(1e3 * r["step_s_earlier"]),
                           f"step ms, version {r['versions'][1]}": _f(1e3 * r["step_s_today"]),
                           "seeds per minute, today / before": f"{r['speedup']:.2f}x",
                           "middle half of the step ratios": f"{r['speedup_quartiles'][0]:.2f}-"
                                                             f"{r['speedup_quartiles'][2]:.2f}x"}
                          for r in versions])]
    times = results.get("notebook_times")
    if times:
        phases = times.get("phase_seconds")
        where = (f"the data {_f(phases['data'], 0)} s, the runs {_f(phases['runs'], 0)} s, the notebooks "
                 f"{_f(phases['notebooks'], 0)} s; " if phases else "")
        runs = (f"{times['trained']} of its {times['seeds']} seeds trained, the rest read from the cache"
                if times.get("seeds") else "a first run trains every model, a later one reads them from the cache")
        lines += ["", f"The notebooks of the last `make reproduce` ({times['manifest']}, commit "
                  f"{times.get('git_commit')}; {_f(times['total_seconds'], 0)} s in all: {where}{runs}):", "",
                  _table([{"notebook": n["notebook"], "s": _f(n["seconds"]), "status": n["status"]}
                          for n in times["notebooks"]])]
    return lines


def _agreement_lines(results: dict, meta: dict) -> list[str]:
    """One sentence on whether the speed-up's two measurements agree within the spread of
    their own steps, and why they may not."""
    rows = [s for s in results.get("speedup", []) if "ratios_agree" in s]
    return ["", _agreement_sentence(rows, meta)] if rows else []


def _agreement_sentence(rows: list[dict], meta: dict) -> str:
    spans = "; ".join(f"{s['profile']} {s['lengths'][0]}/{s['lengths'][1]}: separate "
                      f"{s['ratio_separate_range'][0]:.2f}-{s['ratio_separate_range'][1]:.2f}x, alternating "
                      f"{s['ratio_alternating_range'][0]:.2f}-{s['ratio_alternating_range'][1]:.2f}x" for s in rows)
    if all(s["ratios_agree"] for s in rows):
        return f"The two measurements agree within the spread of their own steps ({spans})."
    return (f"The two measurements disagree beyond the spread of their own steps ({spans}). Separate processes "
            f"run one after the other, minutes apart, on a machine whose load moved from {meta.get('load_start')} "
            f"to {meta.get('load_end')} during the run, and each process sets up its own kernels and memory; the "
            f"alternating steps see the same conditions, so their ratio is the one to trust.")


# The part of docs/performance.md that ``make bench-page`` writes from docs/bench.json.
PAGE_BEGIN = "<!-- generated by `make bench-page` from docs/bench.json: edit neither by hand -->"
PAGE_END = "<!-- end of the generated part -->"


def page_block(results: dict) -> str:
    """:func:`markdown` of a bench run as a section of a longer page: its headings two levels
    down (the page has its own title), between the page's markers."""
    body = "\n".join("##" + line if line.startswith("#") else line for line in markdown(results).splitlines())
    return f"{PAGE_BEGIN}\n\n{body.strip()}\n\n{PAGE_END}"


def splice_page(page: str, results: dict) -> str:
    """``page`` with the text between its markers replaced by :func:`page_block`; a
    ValueError when the page lacks them (one marker each, in order)."""
    if page.count(PAGE_BEGIN) != 1 or page.count(PAGE_END) != 1 or page.index(PAGE_BEGIN) > page.index(PAGE_END):
        raise ValueError(f"the page needs one {PAGE_BEGIN!r} line and, after it, one {PAGE_END!r} line")
    head, rest = page.split(PAGE_BEGIN)
    return head + page_block(results) + rest.split(PAGE_END, 1)[1]
