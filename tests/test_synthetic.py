"""The synthetic stand-in: determinism, label marginals, and its Bayes ceilings."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import f1_score

from cmnlib.data import synthetic as S
from cmnlib.data.mult_pkl import read_mult_pickle


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    sizes = {"train": 12, "valid": 5, "test": 6}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        S.generate_mosei(tmp_path / name, seed=seed, sizes=sizes, monte_carlo_samples=500)
        S.generate_iemocap(tmp_path / name, seed=seed, sizes=sizes, monte_carlo_samples=500)
    for file in ("mosei_senti_data.pkl", "iemocap_data.pkl", "CMU_MOSEI_COVAREP.csd",
                 "CMU_MOSEI_Labels.csd", "SYNTHETIC.json"):
        a, b, c = ((tmp_path / n / file).read_bytes() for n in "abc")
        if file.endswith(".csd"):  # HDF5 stores no time stamps by default, but compare data
            a, b = read_csd_arrays(tmp_path / "a" / file), read_csd_arrays(tmp_path / "b" / file)
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
            continue
        assert a == b, file
        assert a != c, file


def read_csd_arrays(path):
    from cmnlib.data.csd import read_csd
    seq = read_csd(path)
    return {f"{v}/{i}": arr for v, pair in seq.data.items() for i, arr in enumerate(pair)}


def brute_force_nonneg(world, u, i, subset):
    """P(label >= 0 | obs) for utterance i by enumerating every word's hidden state."""
    p = world.process
    n = int(u.n_words[i])
    sd = p.audio_noise
    per_word = []
    for t in range(n):
        options = []  # (contribution, weight)
        for wtype, prob in enumerate(p.type_probs):
            if "L" in subset and wtype != u.word_type[i, t]:
                continue
            prior = 1.0 if "L" in subset else prob
            for rho in (-1, 1):
                for emph in (0, 1):
                    if wtype == S.AMBIGUOUS:
                        p_emph = 1.0 if emph else 0.0
                    else:
                        p_emph = p.decoy_rate if emph else 1 - p.decoy_rate
                    w = prior * 0.5 * p_emph
                    if w == 0:
                        continue
                    if "A" in subset:
                        e, r = u.audio_stats[i, t]
                        w *= norm.pdf(e, emph * p.emphasis_shift, sd)
                        w *= norm.pdf(r, emph * rho * p.prosody_shift, sd)
                    c = {S.POSITIVE: 1, S.NEGATIVE: -1, S.AMBIGUOUS: rho}.get(wtype, 0)
                    options.append((c, w))
        per_word.append(options)
    k_weights = {}
    # enumerate sums by dynamic programming over exact dictionaries (independent check)
    k_weights = {0: 1.0}
    for options in per_word:
        new = {}
        for k, w in k_weights.items():
            for c, wc in options:
                new[k + c] = new.get(k + c, 0.0) + w * wc
        k_weights = new
    total, nonneg = 0.0, 0.0
    for k, w in k_weights.items():
        x = p.bias + p.scale * k / np.sqrt(n)
        if "V" in subset:
            s = u.vision_stat[i, :n].sum()
            w *= norm.pdf(s, n * p.vision_slope * x, np.sqrt(n) * p.vision_noise)
        total += w
        nonneg += w * norm.cdf((x + 1 / 6) / p.label_noise)
    return nonneg / total


def test_mosei_posterior_matches_enumeration():
    world = S.MoseiWorld.create(S.MoseiProcess(), 0)
    rng = np.random.default_rng(5)
    u = S.sample_mosei(world, rng.integers(3, 9, size=6), rng)
    for subset in S.SUBSETS:
        fast = S.mosei_posterior(world, u, subset)["nonneg"]
        slow = [brute_force_nonneg(world, u, i, subset) for i in range(6)]
        np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-9)


def test_posteriors_are_calibrated_and_ceilings_match_a_simulation():
    """On fresh draws, the Bayes rule scores what the ceiling promises (within 4 s.e.)."""
    world = S.MoseiWorld.create(S.MoseiProcess(), 1)
    sampler = S.n_words_sampler(world.process)
    ceilings = S.mosei_ceilings(world, sampler, seed=1, samples=8000)
    rng = np.random.default_rng(123)
    u = S.sample_mosei(world, sampler(rng, 8000), rng)
    truth = u.label >= 0
    for subset in ("L", "LA"):
        post = S.mosei_posterior(world, u, subset)["nonneg"]
        accuracy = ((post >= 0.5) == truth).mean()
        se = np.sqrt(accuracy * (1 - accuracy) / 8000) + ceilings[subset]["acc2_has0_se"]
        assert abs(accuracy - ceilings[subset]["acc2_has0"]) < 4 * se
        assert abs(post.mean() - truth.mean()) < 0.015  # calibrated on average
    # fusion matters by construction: L+A well above either modality alone
    assert ceilings["LA"]["acc2_has0"] > ceilings["L"]["acc2_has0"] + 0.05
    assert ceilings["LA"]["acc2_has0"] > ceilings["A"]["acc2_has0"] + 0.1


def test_iemocap_ceilings_match_a_simulation():
    world = S.IemocapWorld.create(S.IemocapProcess(), 0)
    ceilings = S.iemocap_ceilings(world, seed=0, samples=8000)
    rng = np.random.default_rng(9)
    u = S.sample_iemocap(world, 8000, rng)
    pred = S.iemocap_posterior(world, u, "LA").argmax(axis=1)
    accuracy = (pred == u.emotion).mean()
    assert abs(accuracy - ceilings["LA"]["accuracy"]) < 4 * np.sqrt(accuracy * (1 - accuracy) / 8000) + 0.01
    assert ceilings["LA"]["accuracy"] > max(ceilings["L"]["accuracy"], ceilings["A"]["accuracy"]) + 0.1


def test_f1_from_confusion_matches_scikit_learn():
    rng = np.random.default_rng(0)
    truth, pred = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    confusion = np.zeros((4, 4), int)
    np.add.at(confusion, (truth, pred), 1)
    for average in ("macro", "weighted"):
        assert S.f1_from_confusion(confusion, average) == pytest.approx(f1_score(truth, pred, average=average))


def test_files_record_ceilings_and_cues(tiny_mosei_dir, tiny_iemocap_dir):
    mosei = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")
    ceilings = mosei.meta["file_metadata"]["bayes_ceilings"]
    assert set(S.SUBSETS) <= set(ceilings) and 0.5 < ceilings["LA"]["acc2_has0"] <= 1
    test = mosei["test"]
    # cues sit on valid steps only, and the stored posteriors are probabilities
    steps = np.arange(test.features["text"].shape[1])[None, :]
    assert not (test.extras["cue_mask"].astype(bool) & (steps >= test.lengths["text"][:, None])).any()
    assert test.extras["bayes_nonneg"].shape == (len(test), len(S.SUBSETS))
    assert ((test.extras["bayes_nonneg"] >= 0) & (test.extras["bayes_nonneg"] <= 1)).all()
    iemocap = read_mult_pickle(tiny_iemocap_dir / "iemocap_data.pkl")
    post = iemocap["test"].extras["bayes_posterior"]
    np.testing.assert_allclose(post.sum(axis=-1), 1, atol=1e-5)
    meta = json.loads((tiny_iemocap_dir / "SYNTHETIC.json").read_text())
    assert meta["bayes_ceilings"]["LA"]["accuracy"] > meta["bayes_ceilings"]["majority"]


def test_quick_mosei_marginals_follow_real_mosei():
    """Label marginals of the process vs real MOSEI test (71.0% non-negative)."""
    world = S.MoseiWorld.create(S.MoseiProcess(), 0)
    sampler = S.n_words_sampler(world.process)
    rng = np.random.default_rng(0)
    u = S.sample_mosei(world, sampler(rng, 20000), rng)
    assert abs((u.label >= 0).mean() - 0.710) < 0.02
    assert 0.12 < (u.label == 0).mean() < 0.25
