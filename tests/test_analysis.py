"""cmnlib.analysis against independent expectations: hand-made attention maps, the
equations, forced-uniform models, the documented MUA wirings and known shapes."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from cmnlib import analysis
from cmnlib.data.mult_pkl import read_mult_pickle
from cmnlib.model import CMN, CMNConfig, build_model, count_parameters
from cmnlib.model.attention import GA, SA, SGA, MultiHeadAttention, capture_attention

DIMS = {"text": 12, "audio": 7, "vision": 5}


# --------------------------------------------------------------------------- cue share

def test_cue_share_of_a_hand_made_map():
    # one utterance, one head, two queries, four keys; keys 1 and 3 are cue words
    w = torch.tensor([[[[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]]])
    cue = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert analysis.cue_share(w, cue).item() == pytest.approx((0.6 + 0.5) / 2)
    # a padding query (the second) is left out of the mean
    valid = torch.tensor([[True, False]])
    assert analysis.cue_share(w, cue, valid).item() == pytest.approx(0.6)


def test_cue_share_per_utterance_and_head():
    # two utterances, two heads; utterance 1 has 3 real keys of 4 (the last is padding)
    w = torch.zeros(2, 2, 1, 4)
    w[0, 0, 0] = torch.tensor([1.0, 0, 0, 0])
    w[0, 1, 0] = torch.tensor([0, 0.5, 0.5, 0])
    w[1, 0, 0] = torch.tensor([0.2, 0.3, 0.5, 0])
    w[1, 1, 0] = torch.tensor([1 / 3, 1 / 3, 1 / 3, 0])
    cue = torch.tensor([[1.0, 0, 1, 0], [0, 0, 1, 0]])
    share = analysis.cue_share(w, cue)
    assert torch.allclose(share, torch.tensor([[1.0, 0.5], [0.5, 1 / 3]]))


def test_uniform_share_is_n_cue_over_length():
    cue = torch.tensor([[1.0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 0, 0]])
    lengths = torch.tensor([5, 2, 3])
    assert analysis.uniform_share(cue, lengths).tolist() == pytest.approx([2 / 5, 0.0, 1.0])
    # uniform attention over the real keys has exactly this cue share
    w = torch.zeros(3, 1, 2, 5)
    for b, n in enumerate(lengths.tolist()):
        w[b, :, :, :n] = 1 / n
    assert analysis.cue_share(w, cue)[:, 0].tolist() == pytest.approx([2 / 5, 0.0, 1.0])


def test_best_cue_ratio_reads_the_best_map_per_kind():
    index = pd.MultiIndex.from_tuples([("audio/guided", 0, 0), ("audio/guided", 0, 1), ("text/flat", 0, 0)],
                                      names=["attention", "layer", "head"])
    summary = pd.DataFrame({"share": [0.1, 0.3, 0.12], "uniform": [0.1, 0.1, 0.1]}, index=index)
    assert analysis.best_cue_ratio(summary).to_dict() == pytest.approx({"audio/guided": 3.0, "text/flat": 1.2})


def test_summary_keeps_only_utterances_with_cue_words_and_computes_ratio():
    shares = pd.DataFrame({
        "utterance": [0, 1, 2], "label": [1.0, -1.0, 0.0], "n_words": [4, 4, 5], "n_cue": [1, 0, 2],
        "attention": "text/self", "layer": 0, "head": 0,
        "share": [0.5, 0.3, 0.2], "uniform": [0.25, 0.0, 0.4]})
    table = analysis.summarise_cue_shares(shares, decimals=None)
    row = table.loc[("text/self", 0, 0)]
    assert row["utterances"] == 2
    assert row["share"] == pytest.approx(0.35)
    assert row["uniform"] == pytest.approx(0.325)
    assert row["ratio"] == pytest.approx(0.35 / 0.325)
    assert row["above uniform %"] == pytest.approx(50.0)
    by_class = analysis.cue_shares_by_class(shares.assign(attention="text/flat"), decimals=None)
    assert by_class.loc["non-negative", "text/flat share"] == pytest.approx(0.35)
    assert by_class.loc["non-negative", "utterances"] == 2
    assert analysis.summarise_cue_shares(None) is None


def _uniform_cmn(dims, mua="encoder_decoder", modalities="LA") -> CMN:
    """A CMN whose every attention is exactly uniform over the real keys: zero query
    projections (all scores 0) and zero AttFlat scores."""
    torch.manual_seed(0)
    model = CMN(CMNConfig(modalities=modalities, input_dims=dims, hidden=16, layers=2, heads=4, ff_size=24,
                          mua=mua)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, MultiHeadAttention):
                module.linear_q.weight.zero_()
                module.linear_q.bias.zero_()
        for flat in model.attflat.values():
            flat.mlp.linear.weight.zero_()
            flat.mlp.linear.bias.zero_()
    return model


@pytest.fixture(scope="module")
def tiny_test_split(tiny_mosei_dir):
    split = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")["test"]
    small_dims = {m: a.shape[2] for m, a in split.features.items()}
    return split, small_dims


@pytest.mark.parametrize("mua", ["encoder_decoder", "symmetric"])
def test_uniform_attention_has_exactly_the_uniform_share(tiny_test_split, mua):
    split, dims = tiny_test_split
    model = _uniform_cmn(dims, mua)
    shares = analysis.collect_cue_shares(model, split, batch_size=7)
    kinds = {"text/self", "audio/self", "audio/guided", "text/flat", "audio/flat"}
    if mua == "symmetric":
        kinds = {"text/self", "audio/self", "audio/guided", "text/guided", "text/flat", "audio/flat"}
    assert set(shares["attention"]) == kinds
    np.testing.assert_allclose(shares["share"], shares["uniform"], atol=1e-6)
    # n_cue and the uniform share come straight from the cue mask and the lengths
    first = shares[(shares["attention"] == "text/self") & (shares["layer"] == 1) & (shares["head"] == 1)]
    assert sorted(set(shares["layer"])) == [1, 2]  # layers count from 1, as in the figures
    rows = first["utterance"].to_numpy()
    np.testing.assert_array_equal(first["n_cue"], split.extras["cue_mask"][rows].sum(1))
    np.testing.assert_allclose(first["uniform"], split.extras["cue_mask"][rows].sum(1) / split.lengths["text"][rows])
    assert sorted(rows.tolist()) == list(range(len(split)))
    table = analysis.flat_attention_by_class(model, split)
    assert np.allclose(table.drop(columns="utterances"), 1.0)
    if mua == "encoder_decoder":  # uniform guided attention: weight on the aligned word = 1/n
        assert np.allclose(analysis.aligned_attention(model, split), 1.0)
    # uniform attention: every best ratio is exactly 1; over two identical "seeds" the
    # interval has no width, which decides nothing (flagged, inconclusive)
    found = analysis.cue_findings({"uniform": [model, model]}, split, threshold=1.01, batch_size=7)["uniform"]
    assert {f.statistic.split(":")[0] for f in found} == kinds
    assert all(f.estimate == pytest.approx(1.0, abs=1e-6) and f.high < 1.01 for f in found)
    assert all(f.flag == "no spread" and f.verdict == "inconclusive" for f in found if f.low == f.high)
    if mua == "encoder_decoder":
        (aligned,) = analysis.aligned_findings({"uniform": [model, model]}, split, threshold=1.01,
                                               batch_size=7)["uniform"]
        assert aligned.estimate == pytest.approx(1.0, abs=1e-6) and aligned.high < 1.01


def test_no_cue_mask_gives_none(tiny_iemocap_dir):
    split = read_mult_pickle(tiny_iemocap_dir / "iemocap_data.pkl")["test"]
    model = build_model("cmn", "4class", {m: a.shape[2] for m, a in split.features.items()}, "LA", "quick")
    assert analysis.collect_cue_shares(model, split) is None
    assert analysis.cue_of(split, 0) is None
    assert "words" in analysis.describe_utterance(split, 0)


# --------------------------------------------------------------------------- equations by hand

def test_mha_by_hand_matches_cmnlib_with_a_mask():
    torch.manual_seed(1)
    mha = MultiHeadAttention(8, 4, dropout=0.0).eval()
    q, k = torch.randn(5, 8), torch.randn(6, 8)
    mask = torch.tensor([False, False, False, False, True, True])
    out, w = analysis.mha_by_hand(mha, q, k, mask)
    with capture_attention(mha):
        lib_out = mha(k[None], k[None], q[None], mask[None])
    lib_w = mha.weights
    assert torch.allclose(out, lib_out[0], atol=1e-6) and torch.allclose(w, lib_w[0], atol=1e-6)
    assert (w[..., 4:] == 0).all()
    # head 0 by the textbook formula with the head's own slice of the projections
    Q = q @ mha.linear_q.weight[:2].T + mha.linear_q.bias[:2]
    K = k @ mha.linear_k.weight[:2].T + mha.linear_k.bias[:2]
    scores = (Q @ K.T / math.sqrt(2))[:, :4]
    assert torch.allclose(w[0, :, :4], torch.softmax(scores, -1), atol=1e-6)


@pytest.mark.parametrize("norm", ["mcan", "torch"])
def test_units_by_hand_match_cmnlib(norm):
    torch.manual_seed(2)
    x, y = torch.randn(4, 8), torch.randn(6, 8)
    y_mask = torch.tensor([False] * 5 + [True])
    sa, ga, sga = (cls(8, 2, 16, 0.0, norm=norm).eval() for cls in (SA, GA, SGA))
    out, _ = analysis.unit_by_hand(sa, x)
    assert torch.allclose(out, sa(x[None])[0], atol=1e-5)
    out, _ = analysis.unit_by_hand(ga, x, y, y_mask=y_mask)
    assert torch.allclose(out, ga(x[None], y[None], y_mask[None])[0], atol=1e-5)
    out, w = analysis.unit_by_hand(sga, x, y, y_mask=y_mask)
    with capture_attention(sga):
        lib = sga(x[None], y[None], None, y_mask[None])
    assert torch.allclose(out, lib[0], atol=1e-5)
    assert torch.allclose(w["guided"], sga.mhatt2.weights[0], atol=1e-6)
    with pytest.raises(TypeError):
        analysis.unit_by_hand(torch.nn.Linear(2, 2), x)


def test_masking_checks_and_table():
    example = analysis.toy_example(seed=3)
    mask = torch.tensor([False, True, False, True])
    assert all(analysis.masking_checks(example.mha, example.a, example.b, mask).values())
    table = analysis.masking_table(example.mha, example.a, example.b, mask)
    assert table.shape == (2 * 3, 5)
    assert (table["key 1 (pad)"] == 0).all() and (table["key 3 (pad)"] == 0).all()
    assert np.allclose(table["row sum"], 1.0)


def test_attention_entropy_bounds():
    uniform = np.full((1, 2, 3, 4), 0.25)
    onehot = np.zeros((1, 1, 2, 4))
    onehot[..., 0] = 1.0
    assert np.allclose(analysis.attention_entropy(uniform)["entropy / log T"], 1.0)
    assert np.allclose(analysis.attention_entropy(uniform)["max weight × T"], 1.0)
    assert np.allclose(analysis.attention_entropy(onehot)["entropy / log T"], 0.0)
    assert np.allclose(analysis.attention_entropy(onehot)["max weight × T"], 4.0)


# --------------------------------------------------------------------------- MUA wiring

def _edges(mua, modalities="LA", layers=2):
    table = analysis.mua_guidance(mua, layers=layers, modalities=modalities)
    # an SA unit is guided by nothing: a missing value, which the table shows as a dash
    return {row["unit"]: (row["queries from"], row["guided by"] if isinstance(row["guided by"], str) else None)
            for row in table.to_dict("records")}


def test_mua_guidance_matches_the_documented_wirings():
    assert _edges("encoder_decoder", layers=3) == {
        "text SA 1": ("text LSTM", None), "text SA 2": ("text SA 1", None), "text SA 3": ("text SA 2", None),
        "audio SGA 1": ("audio LSTM", "text SA 3"), "audio SGA 2": ("audio SGA 1", "text SA 3"),
        "audio SGA 3": ("audio SGA 2", "text SA 3")}
    assert _edges("stacked") == {
        "text SA 1": ("text LSTM", None), "text SA 2": ("text SA 1", None),
        "audio SGA 1": ("audio LSTM", "text SA 1"), "audio SGA 2": ("audio SGA 1", "text SA 2")}
    assert _edges("symmetric") == {
        "text SGA 1": ("text LSTM", "audio LSTM"), "audio SGA 1": ("audio LSTM", "text LSTM"),
        "text SGA 2": ("text SGA 1", "audio SGA 1"), "audio SGA 2": ("audio SGA 1", "text SGA 1")}
    sym3 = _edges("symmetric", "LAV", layers=1)
    assert sym3["audio SGA 1"] == ("audio LSTM", "text LSTM + vision LSTM")
    assert sym3["vision SGA 1"] == ("vision LSTM", "text LSTM + audio LSTM")


# --------------------------------------------------------------------------- shapes and sizes

def test_shape_trace_of_a_tiny_model():
    torch.manual_seed(0)
    config = CMNConfig(modalities="LA", input_dims=DIMS, hidden=16, layers=2, heads=4, ff_size=24)
    model = CMN(config)
    lengths = {"text": torch.tensor([9, 3]), "audio": torch.tensor([9, 3])}
    features = {"text": torch.randn(2, 9, 12), "audio": torch.randn(2, 9, 7)}
    trace = analysis.shape_trace(model, features, lengths)
    assert model.training  # restored
    got = list(zip(trace["stage"], [i if isinstance(i, str) else None for i in trace["input"]], trace["output"]))
    assert got == [
        ("input", None, "2 × 9 × 12"), ("input", None, "2 × 9 × 7"),
        ("1 LSTM", "2 × 9 × 12", "2 × 9 × 16"), ("1 LSTM", "2 × 9 × 7", "2 × 9 × 16"),
        ("2 MUA", "2 × 9 × 16", "2 × 9 × 16"), ("2 MUA", "2 × 9 × 16", "2 × 9 × 16"),
        ("2 MUA", "2 × 9 × 16, 2 × 9 × 16", "2 × 9 × 16"),
        ("2 MUA", "2 × 9 × 16, 2 × 9 × 16", "2 × 9 × 16"),
        ("3 AttFlat", "2 × 9 × 16", "2 × 32"), ("3 AttFlat", "2 × 9 × 16", "2 × 32"),
        ("4 fusion (sum, norm)", "2 × 32", "2 × 32"), ("5 head", "2 × 32", "2 × 1"), ("5 head", None, "2")]
    assert int(trace["parameters"].sum()) == count_parameters(model)
    # LSTM parameters: 4 gates x (input + hidden + 2 biases) x hidden
    assert trace["parameters"][2] == 4 * 16 * (12 + 16 + 2)


def test_example_batch_is_cut_to_the_longest_row(tiny_test_split):
    split, _ = tiny_test_split
    features, lengths = analysis.example_batch(split, (0, 1))
    longest = int(max(split.lengths["text"][0], split.lengths["text"][1]))
    assert features["text"].shape == (2, longest, split.features["text"].shape[2])
    assert lengths["audio"].tolist() == [int(split.lengths["audio"][0]), int(split.lengths["audio"][1])]


def test_complexity_table_counts():
    dims = {"text": 300, "audio": 74, "vision": 35}
    lens = {"text": 10, "audio": 10, "vision": 10}
    models = (("CMN (L+A)", "cmn", "LA"), ("MulT (L+A+V)", "mult", "LAV"))
    table = analysis.complexity_table(dims, lens, profiles=("quick",), models=models)
    cmn, mult = table.loc[("quick", "CMN (L+A)")], table.loc[("quick", "MulT (L+A+V)")]
    assert cmn["transformer modules"] == 2 and mult["transformer modules"] == 9
    assert cmn["transformer layers"] == 4                 # 2 SA + 2 SGA
    assert cmn["attention blocks"] == 6                   # an SGA has two
    assert mult["transformer layers"] == 6 * 1 + 3 * 3    # quick: 1 crossmodal layer, memory max(1, 3)
    assert cmn["parameters"] == count_parameters(build_model("cmn", "regression", dims, "LA", "quick"))
    assert cmn["MFLOPs / utterance"] > 0 and mult["MFLOPs / utterance"] > 0
    text = analysis.complexity_claims(table, "quick")
    assert "2 vs 9" in text and "6 crossmodal + 3 memory" in text


def test_run_metrics_and_compare_to_ceilings_read_every_seed(tiny_mosei_dir):
    from fake_runs import fake_run
    from cmnlib.data import load_dataset
    from cmnlib.data.synthetic.process import SUBSETS
    summary = fake_run("cmn", "LA", [{"acc2_has0": 0.80, "mae": 0.61234}, {"acc2_has0": 0.82, "mae": 0.6}],
                       best_epochs=[3, 5])
    table = analysis.run_metrics(summary, keys=("acc2_has0", "mae"))
    assert table.to_dict("list") == {"seed": [0, 1], "selected epoch": [3, 5], "Acc2 %": [80.0, 82.0],
                                     "MAE": [0.612, 0.6]}
    assert list(analysis.run_metrics(summary)) == ["seed", "selected epoch", "Acc2 %", "MAE"]  # the table's columns
    # the mean over seeds, then per subset the expected ceiling (from the file) and the Bayes
    # rule on the same test utterances: P(label >= 0) >= 0.5 against label >= 0, by hand
    bundle = load_dataset("mosei", tiny_mosei_dir)
    ceilings = bundle.meta["file_metadata"]["bayes_ceilings"]
    test = bundle["test"]
    expected = [81.0]
    for subset in ("L", "A", "LA"):  # the file's posterior columns are the generator's subsets, in order
        column = SUBSETS.index(subset)
        rule = (test.extras["bayes_nonneg"][:, column] >= 0.5) == (np.asarray(test.labels) >= 0)
        expected += [100 * ceilings[subset]["acc2_has0"], 100 * rule.mean()]
    shown = analysis.compare_to_ceilings(summary, bundle)
    assert shown.iloc[:, 0].tolist()[1:3] == ["Bayes ceiling, L (expected)", "Bayes rule, L, this test split"]
    assert shown.iloc[:, 1].tolist() == pytest.approx([round(v, 1) for v in expected])
    # real data (no posteriors, no ceilings): the seeds' mean alone
    del test.extras["bayes_nonneg"]
    bundle.meta["file_metadata"].pop("bayes_ceilings")
    assert analysis.compare_to_ceilings(summary, bundle).iloc[:, 1].tolist() == [81.0]


def test_reference_check_covers_every_wiring_and_detects_a_difference(tiny_mosei_dir, monkeypatch):
    from cmnlib.data import load_dataset
    from cmnlib.model import reference
    bundle = load_dataset("mosei", tiny_mosei_dir)
    features, lengths = analysis.example_batch(bundle["test"], (0, 1))
    check = analysis.reference_check(bundle, features, lengths)
    assert check["wiring"].tolist() == ["encoder_decoder", "stacked", "symmetric"]
    assert check[f"below {analysis.REFERENCE_TOLERANCE:g}"].all()
    # a reference that computes something else (AttFlat's pooling weights not normalised) is caught
    def broken_softmax_pooling(self, x, x_mask):
        att = self.mlp(x).masked_fill(x_mask.squeeze(1).squeeze(1).unsqueeze(2), 0.0)
        pooled = [torch.sum(att[:, :, i:i + 1] * x, dim=1) for i in range(self.glimpses)]
        return self.linear_merge(torch.cat(pooled, dim=1))
    monkeypatch.setattr(reference.RefAttFlat, "forward", broken_softmax_pooling)
    broken = analysis.reference_check(bundle, features, lengths)
    assert not broken[f"below {analysis.REFERENCE_TOLERANCE:g}"].any()


def test_word_types_recover_the_generators_words(tiny_mosei_dir, tiny_iemocap_dir):
    from cmnlib.data import load_dataset
    bundle = load_dataset("mosei", tiny_mosei_dir, cache=False)
    types = analysis.word_types(bundle)
    test = bundle["test"]
    valid = np.arange(types.shape[1])[None, :] < test.lengths["text"][:, None]
    assert ((types >= 0) == valid).all()  # a type for every word, -1 at padding
    # the file stores the ambiguous words independently, as the cue mask
    np.testing.assert_array_equal(types == 4, (test.extras["cue_mask"][:, :types.shape[1]] > 0) & valid)
    assert set(np.unique(types[valid])) <= {0, 1, 2, 3, 4}
    assert analysis.word_types(load_dataset("iemocap", tiny_iemocap_dir, cache=False)) is None


def test_guided_attention_by_word_type_is_one_for_uniform_attention(tiny_test_split, tiny_mosei_dir):
    from cmnlib.data import load_dataset
    split, dims = tiny_test_split
    types = analysis.word_types(load_dataset("mosei", tiny_mosei_dir, cache=False))
    model = _uniform_cmn(dims)
    table = analysis.guided_by_word_type(model, split, types, batch_size=7, decimals=None)
    assert list(table.columns) == [f"{g} x n" for g in analysis.WORD_GROUPS]
    assert sorted(set(table.index.get_level_values("layer"))) == [1, 2]
    np.testing.assert_allclose(table.to_numpy(), 1.0, atol=1e-6)
    found = analysis.word_type_findings({"uniform": [model, model]}, split, types, threshold=1.01, batch_size=7)
    # two identical "seeds": a zero-width interval below 1.01, which decides nothing
    assert all(f.estimate == pytest.approx(1.0, abs=1e-6) and f.high < 1.01 for f in found["uniform"])
    assert all(f.verdict == ("inconclusive" if f.low == f.high else "not supported") for f in found["uniform"])
    assert analysis.word_type_findings({"g": [model]}, split, None) == {"g": []}


def test_strongest_columns_by_hand():
    maps = np.full((1, 2, 3, 4), 0.25)                      # uniform over 4 keys
    maps[0, 1, :, 2] = [0.7, 0.4, 0.4]                      # the second head: key 2 gets more ...
    maps[0, 1, :, :2] = 0.0
    maps[0, 1, :, 3] = [0.3, 0.6, 0.6]                      # ... and key 3 a bit less on average
    types_row = np.array([1, 1, 2, 3])
    table = analysis.strongest_columns(maps, types_row, top=2)
    # heads count from 1, as layers do: head 2, key 2 mean 0.5 x 4 = 2.0 ("positive"); head 1:
    # uniform, first key, 1.0
    assert table.to_dict("records") == [{"layer": 1, "head": 2, "word": 2, "type": "positive", "x uniform": 2.0},
                                        {"layer": 1, "head": 1, "word": 0, "type": "neutral", "x uniform": 1.0}]


def test_diagonal_prior_check_and_module_counts():
    check = analysis.diagonal_prior_check(strength=0.5, steps=4)
    assert check["agree"]
    # row 0 by hand: exp(-0.5 * [0, 1, 2, 3]) normalised
    row = np.exp(-0.5 * np.arange(4))
    np.testing.assert_allclose(check["by_hand"][0].numpy(), row / row.sum(), rtol=1e-6)
    counts = analysis.module_counts()
    # the paper-profile CMN (L+A, 4 classes) counted by hand in test_model; MulT's 6 + 3 stacks
    assert counts["cmn_params"] == 15_495_174 and counts["cmn_modules"] == 2
    assert (counts["mult_crossmodal"], counts["mult_memory"]) == (6, 3)


def test_attention_findings_run_each_model_once_and_equal_the_three_analyses(tiny_test_split, tiny_mosei_dir,
                                                                             monkeypatch):
    from cmnlib.analysis import cues
    from cmnlib.data import load_dataset
    split, dims = tiny_test_split
    types = analysis.word_types(load_dataset("mosei", tiny_mosei_dir, cache=False))
    groups = {"a": [build_model("cmn", "regression", dims, "LA", "quick") for _ in range(2)],
              "b": [_uniform_cmn(dims)]}
    apart = {"cue": analysis.cue_findings(groups, split, batch_size=7),
             "aligned": analysis.aligned_findings(groups, split, batch_size=7),
             "by_type": analysis.word_type_findings(groups, split, types, batch_size=7)}
    passes = []
    run = cues._run_attention_batches
    monkeypatch.setattr(cues, "_run_attention_batches", lambda m, *a: passes.append(id(m)) or run(m, *a))
    together = analysis.attention_findings(groups, split, types, batch_size=7)
    assert together == apart and all(together[k]["a"] for k in together)
    assert sorted(passes) == sorted(id(m) for members in groups.values() for m in members)  # once each
    assert cues._ONE_PASS is None  # nothing held after
    # without word types or a cue mask, the same empty lists as the separate analyses
    assert analysis.attention_findings(groups, split, None, batch_size=7)["by_type"] == {"a": [], "b": []}
