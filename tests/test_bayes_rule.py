"""The Bayes rule on the same test utterances: its predictions read from the generator's
posteriors, the confusion-matrix metrics against scikit-learn, the combined interval by
hand, and its coverage in a simulation with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from cmnlib.data import load_dataset
from cmnlib.findings import WITH_TEST_SPLIT, Question
from cmnlib.results import RunResult, SeedResult
from cmnlib.spec import RunSpec
from cmnlib.data import bayes as rules
from cmnlib.studies import bayes, common

Q = Question("q", "{subject} beats the rule ({rule:.1f} on {where})")


@pytest.mark.parametrize("classes, metric, reference", [
    (2, "acc2_has0", lambda t, p: accuracy_score(t, p)),
    (2, "f1_has0", lambda t, p: f1_score(t, p, average="weighted")),
    (4, "accuracy", lambda t, p: accuracy_score(t, p)),
    (4, "macro_f1", lambda t, p: f1_score(t, p, average="macro", labels=range(4), zero_division=0)),
])
def test_confusion_metrics_match_scikit_learn(classes, metric, reference):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, classes, size=(3, 200))
    predicted = np.where(rng.random((3, 200)) < 0.6, truth, rng.integers(0, classes, size=(3, 200)))
    predicted[2] = np.minimum(predicted[2], classes - 2)  # a class never predicted
    got = rules.confusion_metric(rules.confusion(truth, predicted, classes), metric)
    assert got == pytest.approx([reference(t, p) for t, p in zip(truth, predicted)], abs=1e-12)
    with pytest.raises(ValueError, match="confusion-matrix metric"):
        rules.confusion_metric(rules.confusion(truth, predicted, classes), "mae")


def test_the_rule_on_a_test_split_differs_from_the_expected_ceiling(tiny_mosei_dir, data_home):
    """On a written test split, the language-only rule's accuracy is computed from the
    posteriors written with it, and it is not the Monte Carlo expectation in the metadata."""
    bundle = load_dataset("mosei", str(tiny_mosei_dir / "mosei_senti_data.pkl"))
    rule = rules.bayes_rule(bundle, "L")
    posteriors = bundle["test"].extras["bayes_nonneg"][:, 0]
    expected = np.mean((posteriors >= 0.5) == (bundle["test"].labels >= 0))
    assert rule.score("acc2_has0") == pytest.approx(100 * expected)
    ceiling = 100 * bundle.meta["file_metadata"]["bayes_ceilings"]["L"]["acc2_has0"]
    assert abs(rule.score("acc2_has0") - ceiling) > 0.1  # a sample of 1,000 utterances, not the process
    la = rules.bayes_rule(bundle, "LA")
    assert la.score("acc2_has0") > rule.score("acc2_has0")


def _run_with_outputs(truth_nonneg: np.ndarray, per_seed_correct: list[np.ndarray], data_hash="h") -> RunResult:
    """A regression run whose seed s predicts correctly exactly where per_seed_correct[s]."""
    labels = np.where(truth_nonneg == 1, 1.0, -1.0)
    members = [SeedResult(seed=s, best_epoch=1, epochs_run=1, history=[{"epoch": 1}], train_seconds=1.0,
                          outputs={"test": np.where(c, labels, -labels).astype(np.float32)})
               for s, c in enumerate(per_seed_correct)]
    spec = RunSpec(model="cmn", dataset="mosei", modalities="LA", profile="quick")
    return RunResult(spec, "SYNTHETIC", data_hash, {"test": labels}, members)


def test_the_test_splits_resamples_are_drawn_once_per_seed_and_size():
    """Every comparison on a split shares one draw of its bootstrap resamples: the same
    counts as drawing them in place (so no interval moves), cached and read-only."""
    counts = bayes.test_resamples(3, 50, 20)
    index = np.random.default_rng(3).integers(0, 20, size=(50, 20))
    assert counts.dtype == np.float64 and np.array_equal(counts, rules.resample_counts(index, 20))
    assert (counts.sum(1) == 20).all()  # each resample draws n utterances
    assert bayes.test_resamples(3, 50, 20) is counts and not counts.flags.writeable
    assert not np.array_equal(bayes.test_resamples(4, 50, 20), counts)


def test_against_rule_combines_seeds_and_test_sampling_by_hand():
    rng = np.random.default_rng(5)
    n = 400
    truth = rng.integers(0, 2, n)
    rule_correct = rng.random(n) < 0.8
    rule = rules.SameSplitRule("mosei", "L", "test", np.where(rule_correct, truth, 1 - truth), truth, "h", 2)
    correct = [rng.random(n) < p for p in (0.84, 0.86, 0.85)]
    run = _run_with_outputs(truth, correct)
    found = bayes.against_rule(Q, run, rule, "acc2_has0", "d", reps=4000, where="the same utterances")
    seeds = np.array([100 * c.mean() for c in correct])
    assert found.estimate == pytest.approx(seeds.mean() - 100 * rule_correct.mean())
    # the test-sampling part by its closed form: var of the mean per-utterance difference
    per_utterance = np.mean(correct, axis=0) - rule_correct
    var_test = 1e4 * per_utterance.var(ddof=1) / n
    var_seeds = seeds.var(ddof=1) / 3
    half = (found.high - found.low) / 2
    dof = found.dof
    from scipy import stats
    implied = (half / stats.t.ppf(0.975, dof)) ** 2
    assert implied == pytest.approx(var_seeds + var_test, rel=0.08)  # bootstrap vs closed form
    assert found.method == WITH_TEST_SPLIT and found.claim.endswith("on the same utterances)")
    other = _run_with_outputs(truth, correct, data_hash="other")
    with pytest.raises(ValueError, match="other data"):
        bayes.against_rule(Q, other, rule, "acc2_has0", "d")


def test_the_combined_interval_covers_the_true_difference_at_its_level():
    """Simulated: each utterance is correct for the rule with p = 0.80 and for each seed of
    the model with p = 0.82 + a seed effect (sd 0.5 points). The true expected difference is
    2 points; over 300 simulated studies the 95% interval covers it about 95% of the time."""
    rng = np.random.default_rng(11)
    n, seeds, studies, covered = 500, 4, 300, 0
    for _ in range(studies):
        truth = rng.integers(0, 2, n)
        rule_correct = rng.random(n) < 0.80
        rule = rules.SameSplitRule("mosei", "L", "test", np.where(rule_correct, truth, 1 - truth), truth, "h", 2)
        effects = rng.normal(0, 0.005, seeds)
        correct = [rng.random(n) < 0.82 + e for e in effects]
        found = bayes.against_rule(Q, _run_with_outputs(truth, correct), rule, "acc2_has0", "d", reps=400,
                                   where="x")
        covered += found.low <= 2.0 <= found.high
    rate = covered / studies
    assert 0.90 <= rate <= 0.995, rate


def test_against_population_adds_an_accuracys_test_sampling_error():
    run = _run_with_outputs(np.ones(10, dtype=int), [np.ones(10, bool)] * 2)
    run.labels, run.members[0].outputs, run.members[1].outputs = None, None, None
    run.members[0].recorded_metrics = {"test": {"acc2_has0": 0.80}}
    run.members[1].recorded_metrics = {"test": {"acc2_has0": 0.802}}
    found = bayes.against_population(Q, run, 81.6, "acc2_has0", "d", 1000, where="x")
    var = 0.02 / 2 + 1e4 * 0.801 * 0.199 / 1000
    dof = var ** 2 / ((0.02 / 2) ** 2 / 1 + (1e4 * 0.801 * 0.199 / 1000) ** 2 / 999)
    from scipy import stats
    assert found.estimate == pytest.approx(80.1 - 81.6)
    assert found.high == pytest.approx(-1.5 + stats.t.ppf(0.975, dof) * math.sqrt(var))
    assert found.verdict == "inconclusive"  # 1.5 points under, but a 1,000-utterance split cannot tell
    with pytest.raises(ValueError, match="needs an accuracy"):
        bayes.against_population(Q, run, 80.0, "macro_f1", "d", 1000)


def test_text_ceiling_findings_use_the_rule_when_the_runs_hold_outputs(tiny_mosei_dir, data_home):
    bundle = load_dataset("mosei", str(tiny_mosei_dir / "mosei_senti_data.pkl"))
    test = bundle["test"]
    truth = (test.labels >= 0).astype(int)
    rng = np.random.default_rng(3)
    correct = [rng.random(len(truth)) < 0.9 for _ in range(2)]
    run = _run_with_outputs(truth, correct, data_hash=bundle.meta["source_hash"])
    run.labels = {"test": test.labels}
    for member, c in zip(run.members, correct):
        member.outputs = {"test": np.where(c, test.labels + 0.5 * (test.labels >= 0) - 0.5 * (test.labels < 0),
                                           -test.labels - 0.5 * (test.labels >= 0) + 0.5 * (test.labels < 0))
                          .astype(np.float32)}
    ceilings = bundle.meta["file_metadata"]["bayes_ceilings"]
    (found,) = common.text_ceiling_findings([run], ceilings, bundle=bundle)
    rule = rules.bayes_rule(bundle, "L")
    assert found.method == WITH_TEST_SPLIT and dict(found.params)["rule"] == pytest.approx(rule.score("acc2_has0"))
    assert found.estimate == pytest.approx(100 * np.mean([c.mean() for c in correct]) - rule.score("acc2_has0"))
    (plain,) = common.text_ceiling_findings([run], ceilings)  # without the data: the expected ceiling
    assert plain.method == "t" and plain.threshold == pytest.approx(100 * ceilings["L"]["acc2_has0"])


# --------------------------------------------------------------------------------------
# The F1-optimal rule
# --------------------------------------------------------------------------------------

def test_the_weighted_f1_threshold_is_the_best_of_every_threshold():
    """Brute force: scikit-learn's weighted F1 of every threshold at a posterior value (and
    above all of them); the fitted threshold reaches the maximum, and never splits ties."""
    rng = np.random.default_rng(2)
    p = np.round(rng.beta(2, 2, 300), 2)  # ties: posteriors on a 0.01 grid
    truth = (rng.random(300) < p ** 1.5).astype(int)  # calibrated it is not: the best cut is off 0.5
    candidates = [*np.unique(p), 1.01]
    brute = max(f1_score(truth, (p >= t).astype(int), average="weighted") for t in candidates)
    (threshold,) = rules.fit_f1_rule(p, truth, "f1_has0")
    predicted = rules.apply_f1_rule(np.array([threshold]), p)
    assert f1_score(truth, predicted, average="weighted") == pytest.approx(brute, abs=1e-12)
    assert not np.isin(threshold, p)  # midway between two posteriors: equal posteriors, equal classes
    with pytest.raises(ValueError, match="accuracy"):
        rules.fit_f1_rule(p, truth, "acc2_has0")


def _rare_class_draw(rng, n: int):
    """4 classes, the last one rare (5%) and its score pushed down: the argmax seldom
    predicts it (about 1% of utterances against 5% true), so weighting it up trades a little
    accuracy for a better F1 of that class."""
    truth = rng.choice(4, size=n, p=[0.35, 0.3, 0.3, 0.05])
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), truth] += 1.5
    logits[:, 3] -= 2.0
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return p, truth


def test_the_macro_f1_weights_win_a_rare_class_and_hold_on_fresh_utterances():
    rng = np.random.default_rng(4)
    fit_p, fit_truth = _rare_class_draw(rng, 4000)
    new_p, new_truth = _rare_class_draw(rng, 4000)

    def macro(truth, predicted):
        return f1_score(truth, predicted, average="macro", labels=range(4), zero_division=0)

    weights = rules.fit_f1_rule(fit_p, fit_truth, "macro_f1")
    assert weights.shape == (4,) and weights[3] > max(weights[:3])  # the rare class weighted up
    fitted, bayes_fit = macro(fit_truth, rules.apply_f1_rule(weights, fit_p)), macro(fit_truth, fit_p.argmax(1))
    assert (fit_p.argmax(1) == 3).mean() < 0.02 and fitted > bayes_fit + 0.05  # 0.62 -> 0.69 here
    # no random set of weights does better on the utterances it was fitted on...
    trials = rng.uniform(-3, 3, (300, 4))
    assert fitted >= max(macro(fit_truth, (np.log(fit_p) + w).argmax(1)) for w in trials)
    # ...and the gain is the rule's, not the draw's: it holds on new utterances of the process
    assert macro(new_truth, rules.apply_f1_rule(weights, new_p)) > macro(new_truth, new_p.argmax(1)) + 0.03


def test_an_f1_is_judged_against_its_optimal_rule_fitted_without_the_test_labels(tiny_iemocap_dir, data_home):
    bundle = load_dataset("iemocap", str(tiny_iemocap_dir / "iemocap_data.pkl"))
    rule = rules.bayes_rule(bundle, "L", metric="macro_f1")
    assert rule.optimises == "macro_f1" and rule.suits("macro_f1") and not rule.suits("accuracy")
    # fitted on the training and validation utterances, applied to the test posteriors
    fit_p = np.concatenate([rules.posteriors(bundle, "L", s) for s in ("train", "valid")])
    fit_truth = np.concatenate([rules.true_classes(bundle[s].labels, 4) for s in ("train", "valid")])
    expected = rules.apply_f1_rule(rules.fit_f1_rule(fit_p, fit_truth, "macro_f1"), rules.posteriors(bundle, "L"))
    assert np.array_equal(rule.predicted, expected)
    bundle["test"].labels = bundle["test"].labels[::-1].copy()  # other test labels: the same rule
    assert np.array_equal(rules.bayes_rule(bundle, "L", metric="macro_f1").predicted, expected)
    # an accuracy keeps the Bayes rule; the two forms are not interchangeable
    accuracy_rule = rules.bayes_rule(bundle, "L", metric="accuracy")
    assert accuracy_rule.optimises == "accuracy" and rules.bayes_rule(bundle, "L").optimises == "accuracy"
    run = RunResult(RunSpec(model="cmn", dataset="iemocap", modalities="LA", profile="quick", head="classification"),
                    "SYNTHETIC", None, {"test": bundle["test"].labels}, [])
    assert not bayes.applies(accuracy_rule, run, "macro_f1")
    with pytest.raises(ValueError, match="optimises"):
        bayes.against_rule(Q, run, accuracy_rule, "macro_f1", "d")


@pytest.mark.parametrize("classes", [2, 4])
def test_resampled_confusions_from_counts_equal_the_gathered_resamples(classes):
    """The bootstrap's confusions from utterance counts (one product) are exactly those of
    the resampled labels gathered one by one."""
    rng = np.random.default_rng(classes)
    n, reps = 257, 300
    truth, predicted = rng.integers(0, classes, n), rng.integers(0, classes, n)
    index = rng.integers(0, n, size=(reps, n))
    counts = rules.resample_counts(index, n)
    assert counts.shape == (reps, n) and (counts.sum(1) == n).all()
    assert counts[7, 11] == (index[7] == 11).sum()
    np.testing.assert_array_equal(rules.resampled_confusions(counts.astype(np.float64), truth, predicted, classes),
                                  rules.confusion(truth[index], predicted[index], classes))
