"""Analyses behind notebooks 02-04, one module per topic:

* :mod:`.by_hand`: the attention equations written out by hand, and the helpers that show
  them (code, small tables, masking checks);
* :mod:`.maps`: the attention maps of one utterance, and how peaked they are;
* :mod:`.cues`: how much attention falls on the words that only the audio disambiguates,
  per map and as findings over seeds, and scores against the Bayes ceilings;
* :mod:`.structure`: the MUA wiring read off the code, a shape trace through CMN, and the
  whole CMN against the plain reference (:mod:`cmnlib.model.reference`);
* :mod:`.complexity`: model sizes and cost against MulT.

Every function is pure computation (no plotting; the figures are in
:mod:`cmnlib.plots_attention`) and returns tensors, numbers or pandas DataFrames. The
notebooks call them as ``analysis.<name>``.
"""
from .by_hand import (ToyExample, as_table, ffn_by_hand, layer_norm_by_hand, masking_checks, masking_table,
                      mha_by_hand, show_code, toy_example, unit_by_hand)
from .complexity import COMPLEXITY_MODELS, complexity_claims, complexity_table, module_counts
from .cues import (CONCENTRATION, aligned_attention, aligned_findings, attention_findings, best_cue_ratio,
                   collect_cue_shares, compare_cue_shares, compare_to_ceilings, cue_findings, cue_share,
                   cue_shares_by_class, flat_attention_by_class, run_metrics, summarise_cue_shares, uniform_share,
                   WORD_GROUPS, guided_by_word_type, one_pass, strongest_columns, word_type_findings, word_types)
from .maps import (attention_entropy, cue_of, describe_utterance, pick_example, seeded_cmn, utterance_attention,
                   utterance_inputs)
from .structure import (REFERENCE_TOLERANCE, diagonal_prior_check, example_batch, mua_guidance, reference_check,
                        shape_trace)

__all__ = [
    "show_code", "ToyExample", "toy_example", "mha_by_hand", "layer_norm_by_hand", "ffn_by_hand",
    "unit_by_hand", "as_table", "masking_table", "masking_checks", "seeded_cmn", "pick_example",
    "utterance_inputs", "utterance_attention", "cue_share", "uniform_share", "collect_cue_shares",
    "summarise_cue_shares", "compare_cue_shares", "cue_shares_by_class", "flat_attention_by_class",
    "mua_guidance", "example_batch", "shape_trace", "complexity_table", "complexity_claims", "COMPLEXITY_MODELS",
    "run_metrics", "cue_of", "describe_utterance", "attention_entropy", "cue_findings",
    "compare_to_ceilings", "aligned_attention", "best_cue_ratio", "aligned_findings",
    "CONCENTRATION", "reference_check", "REFERENCE_TOLERANCE", "word_types", "guided_by_word_type",
    "word_type_findings", "WORD_GROUPS", "strongest_columns", "module_counts", "diagonal_prior_check",
    "attention_findings", "one_pass",
]
