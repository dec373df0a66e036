"""A synthetic stand-in for CMU-MOSEI and IEMOCAP with a known generative process.

The real feature files cannot be shipped, so the default data is generated here, written
in the real on-disk formats (SDK ``.csd`` files and MulT pickles) and read back through the
same loaders that real data takes. Because the process is known, so is the best any model
can do: the **Bayes-optimal** accuracy for each modality subset (L, A, V, L+A, L+A+V),
computed exactly per utterance from the true posterior and averaged by Monte Carlo.

MOSEI-like (continuous sentiment in [-3, 3]), after the paper's "This video is sick":

* each word has a type: pause ('sp', an all-zero GloVe-like vector), neutral, positive,
  negative or **ambiguous**; the word vector (300-d) tells the type, not the polarity of an
  ambiguous word;
* audio (74-d) has an *emphasis* direction and a *prosody* direction: every ambiguous word
  is emphasised and its prosody shows its polarity rho = +-1; a share of the other words are
  emphasised too, with a random prosody sign (decoys), so audio alone cannot tell which
  emphasised words matter: only text + audio together resolve the ambiguous words;
* the sentiment score is x = bias + scale * K / sqrt(n), where K = (#positive - #negative +
  sum of rho over ambiguous words) and n is the number of words; the label is x plus
  Gaussian annotator noise, rounded to thirds and clipped to [-3, 3] like MOSEI's averages
  of three annotators;
* vision (35-d) carries a weak cue: a direction proportional to x, with heavy noise.

IEMOCAP-like (four emotions neutral, happy, sad, angry): text carries valence (positive
words for happy, negative words for sad and angry), audio carries arousal (happy and angry
high; neutral and sad low), vision a weak valence cue. Text alone confuses sad with angry
and neutral with happy; text and audio together separate all four.

Non-finite values like real COVAREP's -inf (and NaN in vision) are injected into one
feature dimension that carries no signal, so the ceilings are unaffected while the
loaders' replacement and counting are exercised.

Both sets are written at the real dimensions (300/74/35) and lengths (MOSEI 50 steps,
IEMOCAP 20) and, at ``scale='paper'``, the real split sizes.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from importlib.resources import files
from pathlib import Path

import numpy as np
from scipy.special import logsumexp, ndtr
from sklearn.metrics import f1_score
from tqdm import tqdm

from ..config import IEMOCAP_EMOTIONS
from .csd import (
    MOSEI_RECIPE,
    SYNTHETIC_CUES,
    SYNTHETIC_TRUTH,
    ComputationalSequence,
    average_within,
    sdk_metadata,
    write_csd,
)
from .mult_pkl import write_mult_pickle
from .split import SPLITS

SUBSETS = ("L", "A", "V", "LA", "LAV")
TEXT_DIM, AUDIO_DIM, VISION_DIM = 300, 74, 35
GENERATOR_VERSION = 2  # 2: smaller quick splits (CI time)

# Split sizes. 'paper' = the MulT pickles' sizes; 'quick' = small enough for 2 CPU cores.
SPLIT_SIZES = {
    "mosei": {"paper": {"train": 16326, "valid": 1871, "test": 4659},
              "quick": {"train": 1800, "valid": 400, "test": 1000}},
    "iemocap": {"paper": {"train": 2717, "valid": 798, "test": 938},
                "quick": {"train": 1200, "valid": 300, "test": 600}},
}
SEQ_LEN = {"mosei": 50, "iemocap": 20}
MONTE_CARLO_SAMPLES = 30000


# ======================================================================================
# MOSEI-like
# ======================================================================================

@dataclass(frozen=True)
class MoseiProcess:
    """Parameters of the MOSEI-like generative process (see the module docstring)."""

    # word types: pause, neutral, positive, negative, ambiguous
    type_probs: tuple[float, ...] = (0.05, 0.79, 0.055, 0.035, 0.07)
    vocab_sizes: tuple[int, ...] = (1, 3000, 300, 300, 60)
    type_strength: float = 1.0       # length of the type direction in a word vector
    word_noise: float = 0.6          # norm of the word-specific part of a word vector
    bias: float = 0.1
    scale: float = 2.2
    label_noise: float = 0.2
    decoy_rate: float = 0.15         # share of non-ambiguous words that are emphasised too
    emphasis_shift: float = 2.0      # mean of the emphasis feature when emphasised
    prosody_shift: float = 1.0       # |mean| of the prosody feature of an emphasised word
    audio_noise: float = 0.6         # std of a word-level (frame-averaged) audio feature
    vision_slope: float = 0.15       # vision cue mean per unit of x
    vision_noise: float = 1.0
    words_per_second: float = 2.5
    word_ticks: tuple[int, int] = (2, 8)   # word duration in 0.05 s ticks, even, in [lo, hi]
    audio_tick: float = 0.05         # one audio frame = 1 tick (20 Hz; COVAREP is 100 Hz)
    vision_ticks: int = 2            # one vision frame = 2 ticks (10 Hz; FACET is ~30 Hz)
    nonfinite_rate: float = 0.002    # share of audio frames with -inf (vision: NaN) in a noise dim


MOSEI_TYPES = ("pause", "neutral", "positive", "negative", "ambiguous")
PAUSE, NEUTRAL, POSITIVE, NEGATIVE, AMBIGUOUS = range(5)


def _unit_vectors(rng: np.random.Generator, count: int, dim: int, exclude_last: bool = True):
    """Orthonormal directions that avoid the last dimension (reserved for non-finite noise)."""
    usable = dim - 1 if exclude_last else dim
    q, _ = np.linalg.qr(rng.standard_normal((usable, count)))
    out = np.zeros((count, dim))
    out[:, :usable] = q.T
    return out


@dataclass
class MoseiWorld:
    """The fixed parts of the process: vocabulary and feature directions."""

    process: MoseiProcess
    vocab: list[np.ndarray]          # per type: (V_type, 300) word vectors
    emphasis_dir: np.ndarray         # (74,)
    prosody_dir: np.ndarray          # (74,)
    vision_dir: np.ndarray           # (35,)

    @classmethod
    def create(cls, process: MoseiProcess, seed: int) -> "MoseiWorld":
        rng = np.random.default_rng([seed, 1])
        type_dirs = _unit_vectors(rng, len(MOSEI_TYPES), TEXT_DIM, exclude_last=False)
        vocab = []
        for t, size in enumerate(process.vocab_sizes):
            if t == PAUSE:
                vocab.append(np.zeros((1, TEXT_DIM)))
                continue
            noise = rng.standard_normal((size, TEXT_DIM))
            noise *= process.word_noise / np.linalg.norm(noise, axis=1, keepdims=True)
            vocab.append(process.type_strength * type_dirs[t] + noise)
        audio_dirs = _unit_vectors(rng, 2, AUDIO_DIM)
        vision_dir = _unit_vectors(rng, 1, VISION_DIM)[0]
        return cls(process, [v.astype(np.float32) for v in vocab], audio_dirs[0], audio_dirs[1],
                   vision_dir)


@dataclass
class MoseiUtterances:
    """Word-level draws for a batch of utterances (padded to 50 words, valid first)."""

    n_words: np.ndarray      # (N,)
    word_type: np.ndarray    # (N, 50) int, -1 beyond n_words
    word_id: np.ndarray      # (N, 50) index into the type's vocabulary
    rho: np.ndarray          # (N, 50) prosody sign of each word (+-1)
    emphasised: np.ndarray   # (N, 50) bool
    score: np.ndarray        # (N,) x, the noise-free sentiment
    label: np.ndarray        # (N,) rounded to thirds, clipped
    audio_stats: np.ndarray  # (N, 50, 2) projections of word-level audio on (emphasis, prosody)
    vision_stat: np.ndarray  # (N, 50) projection of word-level vision on its direction


def _sample_mosei(world: MoseiWorld, n_words: np.ndarray, rng: np.random.Generator) -> MoseiUtterances:
    p = world.process
    n = n_words.shape[0]
    steps = np.arange(50)[None, :]
    valid = steps < n_words[:, None]
    word_type = rng.choice(len(MOSEI_TYPES), size=(n, 50), p=np.asarray(p.type_probs))
    word_type = np.where(valid, word_type, -1)
    sizes = np.asarray(p.vocab_sizes)
    word_id = (rng.random((n, 50)) * sizes[np.maximum(word_type, 0)]).astype(np.int64)
    rho = rng.choice(np.array([-1, 1]), size=(n, 50))
    ambiguous = word_type == AMBIGUOUS
    decoy = valid & ~ambiguous & (rng.random((n, 50)) < p.decoy_rate)
    emphasised = ambiguous | decoy
    contribution = ((word_type == POSITIVE).astype(np.int64) - (word_type == NEGATIVE)
                    + np.where(ambiguous, rho, 0))
    k = contribution.sum(axis=1)
    score = p.bias + p.scale * k / np.sqrt(n_words)
    noisy = score + p.label_noise * rng.standard_normal(n)
    label = np.clip(np.round(noisy * 3) / 3, -3, 3)
    emphasis = emphasised * p.emphasis_shift + p.audio_noise * rng.standard_normal((n, 50))
    prosody = emphasised * rho * p.prosody_shift + p.audio_noise * rng.standard_normal((n, 50))
    vision = p.vision_slope * score[:, None] + p.vision_noise * rng.standard_normal((n, 50))
    audio_stats = np.stack([emphasis, prosody], axis=-1) * valid[..., None]
    return MoseiUtterances(n_words, word_type, word_id, rho, emphasised, score,
                           label.astype(np.float32), audio_stats, vision * valid)


# --- the exact posterior -------------------------------------------------------------

def _normal_logpdf(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


def mosei_posterior(world: MoseiWorld, u: MoseiUtterances, subset: str) -> dict[str, np.ndarray]:
    """P(label >= 0), P(label > 0) and P(label < 0) given the modalities in ``subset``.

    Per word, the contribution c in {-1, 0, +1} to K has a posterior that depends only on
    that word's own observations (words are independent given nothing else), so the
    distribution of K = sum c is an exact convolution (a DP over words). Vision then
    reweights K through its likelihood, and the label noise is integrated in closed form.
    """
    p = world.process
    n, t_max = u.word_type.shape
    valid = np.arange(t_max)[None, :] < u.n_words[:, None]
    probs = np.asarray(p.type_probs)
    # log-likelihood of the two audio statistics for each (emphasised, rho) hypothesis
    e_obs, r_obs = u.audio_stats[..., 0], u.audio_stats[..., 1]
    ll_emph = _normal_logpdf(e_obs, p.emphasis_shift, p.audio_noise)
    ll_plain = _normal_logpdf(e_obs, 0.0, p.audio_noise)
    ll_pos = _normal_logpdf(r_obs, p.prosody_shift, p.audio_noise)
    ll_neg = _normal_logpdf(r_obs, -p.prosody_shift, p.audio_noise)
    ll_none = _normal_logpdf(r_obs, 0.0, p.audio_noise)
    # Emphasised words show their prosody sign; for a non-ambiguous emphasised word the
    # sign is irrelevant to K, so its audio likelihood averages over rho.
    audio_if_ambiguous = {+1: ll_emph + ll_pos, -1: ll_emph + ll_neg}
    audio_if_other = np.logaddexp(
        np.log(p.decoy_rate) + ll_emph + np.logaddexp(ll_pos, ll_neg) + np.log(0.5),
        np.log(1 - p.decoy_rate) + ll_plain + ll_none)
    use_l, use_a, use_v = "L" in subset, "A" in subset, "V" in subset
    # log P(c = -1, 0, +1 | this word's observations), up to a per-word constant
    log_c = np.full((n, t_max, 3), -np.inf)
    for t_index, c_of_type in ((PAUSE, 0), (NEUTRAL, 0), (POSITIVE, 1), (NEGATIVE, -1)):
        prior = np.log(probs[t_index])
        if use_l:
            prior = np.where(u.word_type == t_index, 0.0, -np.inf)
        term = prior + (audio_if_other if use_a else 0.0)
        log_c[..., c_of_type + 1] = np.logaddexp(log_c[..., c_of_type + 1], term)
    for sign in (-1, 1):
        prior = np.log(probs[AMBIGUOUS]) + np.log(0.5)
        if use_l:
            prior = np.where(u.word_type == AMBIGUOUS, np.log(0.5), -np.inf)
        term = prior + (audio_if_ambiguous[sign] if use_a else 0.0)
        log_c[..., sign + 1] = np.logaddexp(log_c[..., sign + 1], term)
    log_c[~valid] = np.log(np.array([0.0, 1.0, 0.0]) + 1e-300)  # padding contributes 0
    c_probs = np.exp(log_c - logsumexp(log_c, axis=-1, keepdims=True))
    # distribution of K over -50..50 by convolution, word by word
    k_dist = _sum_distribution(c_probs, u.n_words)
    k_values = np.arange(-t_max, t_max + 1)
    score = p.bias + p.scale * k_values[None, :] / np.sqrt(u.n_words)[:, None]
    if use_v:
        # sum of the word-level vision statistics ~ N(n * slope * x, n * noise^2)
        total = u.vision_stat.sum(axis=1)[:, None]
        n_f = u.n_words[:, None]
        log_like = _normal_logpdf(total, n_f * p.vision_slope * score, np.sqrt(n_f) * p.vision_noise)
        log_w = np.log(np.maximum(k_dist, 1e-300)) + log_like
        k_dist = np.exp(log_w - logsumexp(log_w, axis=1, keepdims=True)) * (k_dist > 0)
        k_dist /= k_dist.sum(axis=1, keepdims=True)
    sigma = p.label_noise
    # rounding to thirds: label >= 0 iff x + noise >= -1/6; label > 0 iff x + noise >= 1/6
    return {"nonneg": (k_dist * ndtr((score + 1 / 6) / sigma)).sum(axis=1),
            "pos": (k_dist * ndtr((score - 1 / 6) / sigma)).sum(axis=1),
            "neg": (k_dist * ndtr((-1 / 6 - score) / sigma)).sum(axis=1)}


def _sum_distribution(c_probs: np.ndarray, n_words: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """P(K = k), k = -T..T, for K = sum of independent c_t in {-1, 0, +1}: (N, 2T+1).

    Rows are processed in chunks of similar length, each only over its own words and its
    own window of K, so the cost grows with the words actually present.
    """
    n, t_max, _ = c_probs.shape
    k_dist = np.zeros((n, 2 * t_max + 1))
    order = np.argsort(n_words, kind="stable")
    for begin in range(0, n, chunk):
        rows = order[begin:begin + chunk]
        longest = int(n_words[rows].max())
        dist = np.zeros((rows.size, 2 * longest + 1))
        dist[:, longest] = 1.0
        probs = c_probs[rows, :longest]
        for t in range(longest):
            minus, zero, plus = (probs[:, t, j:j + 1] for j in range(3))
            new = zero * dist
            new[:, 1:] += plus * dist[:, :-1]
            new[:, :-1] += minus * dist[:, 1:]
            dist = new
        k_dist[rows, t_max - longest:t_max + longest + 1] = dist
    return k_dist


# ======================================================================================
# IEMOCAP-like
# ======================================================================================

@dataclass(frozen=True)
class IemocapProcess:
    """Parameters of the IEMOCAP-like process (see the module docstring)."""

    # Class balance: unbalanced like IEMOCAP's four-emotion subset with neutral most
    # frequent. Chosen, not measured from the real files.
    class_probs: tuple[float, ...] = (0.38, 0.16, 0.20, 0.26)
    # word types: pause, filler, positive, negative, intense; one row per emotion
    word_given_class: tuple[tuple[float, ...], ...] = (
        (0.05, 0.85, 0.04, 0.04, 0.02),   # neutral
        (0.05, 0.73, 0.16, 0.02, 0.04),   # happy
        (0.05, 0.75, 0.03, 0.14, 0.03),   # sad
        (0.05, 0.72, 0.03, 0.14, 0.06),   # angry
    )
    vocab_sizes: tuple[int, ...] = (1, 1500, 200, 200, 100)
    type_strength: float = 1.0
    word_noise: float = 0.6
    arousal: tuple[float, ...] = (-1.0, 1.0, -1.0, 1.0)   # neutral, happy, sad, angry
    valence: tuple[float, ...] = (0.0, 1.0, -1.0, -1.0)
    audio_shift: float = 0.5
    audio_noise: float = 1.6
    vision_shift: float = 0.12
    vision_noise: float = 1.0
    min_words: int = 6
    nonfinite_rate: float = 0.002


IEMOCAP_TYPES = ("pause", "filler", "positive", "negative", "intense")


@dataclass
class IemocapWorld:
    process: IemocapProcess
    vocab: list[np.ndarray]
    audio_dir: np.ndarray
    vision_dir: np.ndarray

    @classmethod
    def create(cls, process: IemocapProcess, seed: int) -> "IemocapWorld":
        rng = np.random.default_rng([seed, 2])
        type_dirs = _unit_vectors(rng, len(IEMOCAP_TYPES), TEXT_DIM, exclude_last=False)
        vocab = []
        for t, size in enumerate(process.vocab_sizes):
            if t == 0:
                vocab.append(np.zeros((1, TEXT_DIM), dtype=np.float32))
                continue
            noise = rng.standard_normal((size, TEXT_DIM))
            noise *= process.word_noise / np.linalg.norm(noise, axis=1, keepdims=True)
            vocab.append((process.type_strength * type_dirs[t] + noise).astype(np.float32))
        return cls(process, vocab, _unit_vectors(rng, 1, AUDIO_DIM)[0],
                   _unit_vectors(rng, 1, VISION_DIM)[0])


@dataclass
class IemocapUtterances:
    n_words: np.ndarray
    emotion: np.ndarray       # (N,) class index
    word_type: np.ndarray     # (N, 20), -1 beyond n_words
    word_id: np.ndarray
    audio_stat: np.ndarray    # (N, 20) projection on the arousal direction
    vision_stat: np.ndarray   # (N, 20)


def _sample_iemocap(world: IemocapWorld, n: int, rng: np.random.Generator) -> IemocapUtterances:
    p = world.process
    t_max = SEQ_LEN["iemocap"]
    emotion = rng.choice(4, size=n, p=np.asarray(p.class_probs))
    n_words = rng.integers(p.min_words, t_max + 1, size=n)
    valid = np.arange(t_max)[None, :] < n_words[:, None]
    cumulative = np.cumsum(np.asarray(p.word_given_class), axis=1)[emotion]  # (N, types)
    draws = rng.random((n, t_max))
    word_type = (draws[..., None] > cumulative[:, None, :]).sum(axis=-1)
    word_type = np.where(valid, np.minimum(word_type, len(IEMOCAP_TYPES) - 1), -1)
    sizes = np.asarray(p.vocab_sizes)
    word_id = (rng.random((n, t_max)) * sizes[np.maximum(word_type, 0)]).astype(np.int64)
    arousal = np.asarray(p.arousal)[emotion]
    valence = np.asarray(p.valence)[emotion]
    audio = (arousal[:, None] * p.audio_shift + p.audio_noise * rng.standard_normal((n, t_max))) * valid
    vision = (valence[:, None] * p.vision_shift + p.vision_noise * rng.standard_normal((n, t_max))) * valid
    return IemocapUtterances(n_words, emotion, word_type, word_id, audio, vision)


def iemocap_posterior(world: IemocapWorld, u: IemocapUtterances, subset: str) -> np.ndarray:
    """P(emotion | the modalities in ``subset``), exact: (N, 4)."""
    p = world.process
    valid = u.word_type >= 0
    log_post = np.tile(np.log(np.asarray(p.class_probs)), (u.emotion.shape[0], 1))
    for c in range(4):
        if "L" in subset:
            log_word = np.log(np.asarray(p.word_given_class[c]))[np.maximum(u.word_type, 0)]
            log_post[:, c] += (log_word * valid).sum(axis=1)
        if "A" in subset:
            ll = _normal_logpdf(u.audio_stat, p.arousal[c] * p.audio_shift, p.audio_noise)
            log_post[:, c] += (ll * valid).sum(axis=1)
        if "V" in subset:
            ll = _normal_logpdf(u.vision_stat, p.valence[c] * p.vision_shift, p.vision_noise)
            log_post[:, c] += (ll * valid).sum(axis=1)
    return np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))


# ======================================================================================
# Bayes ceilings by Monte Carlo
# ======================================================================================

def f1_from_confusion(confusion: np.ndarray, average: str) -> np.ndarray:
    """F1 from confusion matrices (..., K, K) with rows = truth: 'weighted' or 'macro'.

    Used for bootstrap standard errors, where resampling utterances is the same as
    resampling the cells of the confusion matrix (multinomial), so no metric is re-run on
    resampled arrays. Checked against scikit-learn in the tests.
    """
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(float)
    support = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    if average == "macro":
        return f1.mean(axis=-1)
    return (f1 * support).sum(axis=-1) / support.sum(axis=-1)


def _f1_with_se(truth: np.ndarray, pred: np.ndarray, classes: int, average: str,
                rng: np.random.Generator, reps: int = 500) -> tuple[float, float]:
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (truth, pred), 1)
    total = confusion.sum()
    draws = rng.multinomial(total, confusion.ravel() / total, size=reps).reshape(reps, classes, classes)
    return float(f1_from_confusion(confusion, average)), float(f1_from_confusion(draws, average).std(ddof=1))


def mosei_ceilings(world: MoseiWorld, n_words_sampler, seed: int,
                   samples: int = MONTE_CARLO_SAMPLES) -> dict:
    """Bayes-optimal Acc2 (both conventions) and the F1 of that classifier, per subset."""
    rng = np.random.default_rng([seed, 99])
    u = _sample_mosei(world, n_words_sampler(rng, samples), rng)
    out = {}
    nonneg_true = u.label >= 0
    nonzero = u.label != 0
    for subset in SUBSETS:
        post = mosei_posterior(world, u, subset)
        pred_nonneg = post["nonneg"] >= 0.5
        pred_pos = post["pos"] >= post["neg"]
        expected_acc = np.maximum(post["nonneg"], 1 - post["nonneg"])
        expected_non0 = np.maximum(post["pos"], post["neg"]).sum() / (post["pos"] + post["neg"]).sum()
        out[subset] = {
            "acc2_has0": float(expected_acc.mean()),
            "acc2_has0_se": float(expected_acc.std(ddof=1) / np.sqrt(samples)),
            "acc2_non0": float(expected_non0),
            "f1_non0": float(f1_score(u.label[nonzero] > 0, pred_pos[nonzero], average="weighted")),
        }
        out[subset]["f1_has0"], out[subset]["f1_has0_se"] = _f1_with_se(
            nonneg_true.astype(int), pred_nonneg.astype(int), 2, "weighted", rng)
    out["majority_has0"] = float(max(nonneg_true.mean(), 1 - nonneg_true.mean()))
    out["nonneg_rate"] = float(nonneg_true.mean())
    out["zero_rate"] = float((u.label == 0).mean())
    out["monte_carlo_samples"] = samples
    out["note"] = ("acc2: expected accuracy of the Bayes-optimal classifier (an upper bound for "
                   "any model on this process); f1: weighted F1 of that classifier on the Monte "
                   "Carlo sample (a reference point, not an upper bound for F1)")
    return out


def iemocap_ceilings(world: IemocapWorld, seed: int, samples: int = MONTE_CARLO_SAMPLES) -> dict:
    """Bayes-optimal 4-class accuracy and the macro-F1 of that classifier, per subset."""
    rng = np.random.default_rng([seed, 98])
    u = _sample_iemocap(world, samples, rng)
    out = {}
    for subset in SUBSETS:
        post = iemocap_posterior(world, u, subset)
        pred = post.argmax(axis=1)
        expected = post.max(axis=1)
        out[subset] = {
            "accuracy": float(expected.mean()),
            "accuracy_se": float(expected.std(ddof=1) / np.sqrt(samples)),
        }
        out[subset]["macro_f1"], out[subset]["macro_f1_se"] = _f1_with_se(
            u.emotion, pred, 4, "macro", rng)
    out["majority"] = float(np.bincount(u.emotion, minlength=4).max() / samples)
    out["monte_carlo_samples"] = samples
    out["note"] = ("accuracy: expected accuracy of the Bayes-optimal classifier (an upper bound); "
                   "macro_f1: macro-F1 of that classifier on the Monte Carlo sample (a reference "
                   "point, not an upper bound for F1)")
    return out


# ======================================================================================
# Writing the files
# ======================================================================================

def _mosei_stats() -> dict:
    return json.loads(files("cmnlib.resources").joinpath("mosei_stats.json").read_text())


def _folds() -> dict:
    return json.loads(files("cmnlib.resources").joinpath("standard_folds.json").read_text())["cmu_mosei"]


def _video_plan(targets: dict[str, int], subsample: bool,
                rng: np.random.Generator) -> dict[str, list[tuple[str, int]]]:
    """(video id, number of segments) per split: real fold ids and real segment counts.

    The full folds ('paper') trim the largest videos until the totals equal the MulT pickle
    sizes; smaller sets take fold videos in a seeded order until the sizes are reached.
    """
    stats = _mosei_stats()["segments_per_video"]
    folds = _folds()
    plan = {}
    for split in SPLITS:
        videos = [(v, c) for v, c in zip(folds[split], stats[split]) if c > 0]
        if subsample:
            order = rng.permutation(len(videos))
            chosen, total = [], 0
            for i in order:
                vid, count = videos[i]
                count = min(count, targets[split] - total)
                chosen.append((vid, count))
                total += count
                if total == targets[split]:
                    break
            videos = chosen
        else:
            counts = np.array([c for _, c in videos])
            excess = counts.sum() - targets[split]
            for _ in range(max(excess, 0)):
                counts[np.argmax(counts)] -= 1
            videos = [(v, int(c)) for (v, _), c in zip(videos, counts)]
        # the order in which h5py lists groups, so the .csd and .pkl files agree row by row
        plan[split] = sorted(videos)
    return plan


def _n_words_sampler(process: MoseiProcess):
    quantiles = np.asarray(_mosei_stats()["segment_duration_quantiles_s"])

    def sample(rng: np.random.Generator, count: int) -> np.ndarray:
        durations = np.interp(rng.random(count), np.linspace(0, 1, quantiles.size), quantiles)
        return np.clip(np.round(durations * process.words_per_second), 3, 50).astype(np.int64)
    return sample


def _centred_frames(means: np.ndarray, counts: np.ndarray, spread: float, rng) -> np.ndarray:
    """counts[w] frames per word whose average is exactly means[w] (alignment recovers it)."""
    word_of_frame = np.repeat(np.arange(means.shape[0]), counts)
    deviation = spread * rng.standard_normal((word_of_frame.size, means.shape[1]))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    deviation -= (np.add.reduceat(deviation, offsets, axis=0) / counts[:, None])[word_of_frame]
    return means[word_of_frame] + deviation


def _split_sizes(dataset: str, scale: str, sizes: dict[str, int] | None) -> dict[str, int]:
    if sizes is not None:
        if set(sizes) != set(SPLITS) or min(sizes.values()) < 1:
            raise ValueError(f"sizes must give a positive size for each of {SPLITS}, got {sizes}")
        return dict(sizes)
    if scale not in SPLIT_SIZES[dataset]:
        raise ValueError(f"scale must be one of {list(SPLIT_SIZES[dataset])}, got {scale!r}")
    return SPLIT_SIZES[dataset][scale]


def generate_mosei(out_dir: str | Path, scale: str = "quick", seed: int = 0,
                   process: MoseiProcess | None = None, write_pickle: bool = True,
                   progress: bool = False, sizes: dict[str, int] | None = None,
                   monte_carlo_samples: int = MONTE_CARLO_SAMPLES) -> dict:
    """Write the MOSEI-like set into ``out_dir``: SDK ``.csd`` files and a MulT pickle.

    ``sizes`` overrides the scale's split sizes (small sets for tests). Returns a summary
    (files, sizes, ceilings). The same seed gives the same bytes.
    """
    targets = _split_sizes("mosei", scale, sizes)
    process = process or MoseiProcess()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = MoseiWorld.create(process, seed)
    rng = np.random.default_rng([seed, 3])
    plan = _video_plan(targets, targets != SPLIT_SIZES["mosei"]["paper"], rng)
    sampler = _n_words_sampler(process)
    ceilings = mosei_ceilings(world, sampler, seed, monte_carlo_samples)
    text_seq, audio_seq, vision_seq, label_seq, cue_seq, truth_seq = ({} for _ in range(6))
    pickle_splits = {}
    seq_len = SEQ_LEN["mosei"]
    truth_names = ["true_score"] + [f"bayes_nonneg#{s}" for s in SUBSETS]
    total_videos = sum(len(v) for v in plan.values())
    bar = tqdm(total=total_videos, desc="synth mosei", disable=not progress)
    for split in SPLITS:
        rows = {"text": [], "audio": [], "vision": [], "labels": [], "id": [], "cue_mask": [],
                "bayes_nonneg": [], "score": []}
        counts = [c for _, c in plan[split]]
        everything = _sample_mosei(world, sampler(rng, sum(counts)), rng)
        all_posts = np.stack([mosei_posterior(world, everything, s)["nonneg"] for s in SUBSETS], axis=1)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for (video_id, n_segments), first, last in zip(plan[split], bounds[:-1], bounds[1:]):
            u = MoseiUtterances(*(getattr(everything, f.name)[first:last] for f in fields(MoseiUtterances)))
            posts = all_posts[first:last]
            video = _mosei_video(world, u, rng)
            text_seq[video_id] = (video["text"], video["word_intervals"])
            audio_seq[video_id] = (video["audio"], video["audio_intervals"])
            vision_seq[video_id] = (video["vision"], video["vision_intervals"])
            cue_seq[video_id] = (u.emphasised[u.word_type >= 0][:, None].astype(np.float32) *
                                 (u.word_type[u.word_type >= 0] == AMBIGUOUS)[:, None],
                                 video["word_intervals"])
            label_seq[video_id] = (video["labels"], video["segment_intervals"])
            truth_seq[video_id] = (np.column_stack([u.score, posts]).astype(np.float32),
                                   video["segment_intervals"])
            for i in range(n_segments):
                length = int(u.n_words[i])
                for modality in ("text", "audio", "vision"):
                    padded = np.zeros((seq_len, video[f"{modality}_words"][i].shape[1]), np.float32)
                    padded[seq_len - length:] = video[f"{modality}_words"][i]  # MulT: left padding
                    rows[modality].append(padded)
                cue = np.zeros(seq_len, np.uint8)
                cue[seq_len - length:] = u.word_type[i, :length] == AMBIGUOUS
                rows["cue_mask"].append(cue)
                rows["labels"].append(u.label[i])
                rows["id"].append(f"{video_id}[{i}]")
                rows["bayes_nonneg"].append(posts[i])
                rows["score"].append(u.score[i])
            bar.update(1)
        pickle_splits[split] = {
            "text": np.stack(rows["text"]), "audio": np.stack(rows["audio"]),
            "vision": np.stack(rows["vision"]),
            "labels": np.asarray(rows["labels"], np.float32).reshape(-1, 1, 1),
            "id": np.asarray(rows["id"]), "cue_mask": np.stack(rows["cue_mask"]),
            "bayes_nonneg": np.asarray(rows["bayes_nonneg"], np.float32),
            "true_score": np.asarray(rows["score"], np.float32),
        }
    bar.close()
    metadata = {"generator": "cmnlib.data.synthetic", "generator_version": GENERATOR_VERSION,
                "dataset": "mosei", "scale": scale if sizes is None else "custom", "seed": seed, "process": asdict(process),
                "subsets": list(SUBSETS), "bayes_ceilings": ceilings,
                "cue_mask": "1 at ambiguous words: their polarity is shown only by the audio "
                            "frames inside the word"}
    written = []
    description = "SYNTHETIC stand-in written by cmnlib in the CMU-MultimodalSDK format"
    names = {"text": [f"glove_{i}" for i in range(TEXT_DIM)],
             "audio": [f"covarep_like_{i}" for i in range(AUDIO_DIM)],
             "vision": [f"facet_like_{i}" for i in range(VISION_DIM)]}
    for role, data, file_name in (
            ("text", text_seq, "CMU_MOSEI_TimestampedWordVectors.csd"),
            ("audio", audio_seq, "CMU_MOSEI_COVAREP.csd"),
            ("vision", vision_seq, "CMU_MOSEI_VisualFacet42.csd")):
        root = MOSEI_RECIPE[role]
        written.append(write_csd(out_dir / file_name, ComputationalSequence(
            root, data, sdk_metadata(root, description, names[role], "CMU-MOSEI (synthetic)"))))
    written.append(write_csd(out_dir / "CMU_MOSEI_Labels.csd", ComputationalSequence(
        MOSEI_RECIPE["labels"], label_seq, sdk_metadata(
            MOSEI_RECIPE["labels"], description,
            ["sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear"],
            "CMU-MOSEI (synthetic)"))))
    written.append(write_csd(out_dir / "CMU_MOSEI_SyntheticCues.csd", ComputationalSequence(
        SYNTHETIC_CUES, cue_seq, sdk_metadata(SYNTHETIC_CUES, metadata["cue_mask"], ["ambiguous"],
                                              "CMU-MOSEI (synthetic)"))))
    written.append(write_csd(out_dir / "CMU_MOSEI_SyntheticTruth.csd", ComputationalSequence(
        SYNTHETIC_TRUTH, truth_seq, sdk_metadata(
            SYNTHETIC_TRUTH, "per segment: noise-free score x and the Bayes posterior "
            "P(label >= 0 | modalities) for each subset", truth_names, "CMU-MOSEI (synthetic)",
            synthetic=metadata))))
    if write_pickle:
        written.append(write_mult_pickle(out_dir / "mosei_senti_data.pkl", pickle_splits, metadata))
    (out_dir / "SYNTHETIC.json").write_text(json.dumps(metadata, indent=1) + "\n")
    return {"dataset": "mosei", "scale": scale, "seed": seed, "files": [str(w) for w in written],
            "sizes": {s: len(pickle_splits[s]["labels"]) for s in SPLITS},
            "bayes_ceilings": ceilings}


def _mosei_video(world: MoseiWorld, u: MoseiUtterances, rng) -> dict:
    """Time-stamped frames for one video whose segments are the utterances ``u``."""
    p = world.process
    n_segments = u.n_words.shape[0]
    tick = p.audio_tick
    lo, hi = p.word_ticks
    word_rows, word_iv, audio_rows, audio_iv, vision_rows, vision_iv = [], [], [], [], [], []
    seg_iv, labels = [], []
    text_words = []
    cursor = 2 * int(rng.integers(0, 10))  # ticks; even so vision frames (2 ticks) tile words
    for i in range(n_segments):
        n = int(u.n_words[i])
        durations = 2 * rng.integers(lo // 2, hi // 2 + 1, size=n)
        bounds = cursor + np.concatenate([[0], np.cumsum(durations)])
        seg_iv.append([bounds[0] * tick, bounds[-1] * tick])
        types, ids = u.word_type[i, :n], u.word_id[i, :n]
        vectors = np.stack([world.vocab[t][w] for t, w in zip(types, ids)])
        audio_mean = (u.audio_stats[i, :n, 0:1] * world.emphasis_dir
                      + u.audio_stats[i, :n, 1:2] * world.prosody_dir
                      + _orthogonal_noise(rng, n, np.stack([world.emphasis_dir, world.prosody_dir]),
                                          p.audio_noise))
        vision_mean = u.vision_stat[i, :n, None] * world.vision_dir + _orthogonal_noise(
            rng, n, world.vision_dir[None], p.vision_noise)
        starts, ends = bounds[:-1], bounds[1:]
        audio_rows.append(_centred_frames(audio_mean, ends - starts, 0.5, rng))
        audio_iv.append(np.column_stack([np.arange(starts[0], ends[-1]),
                                         np.arange(starts[0] + 1, ends[-1] + 1)]) * tick)
        vision_rows.append(_centred_frames(vision_mean, (ends - starts) // p.vision_ticks, 0.5, rng))
        v_starts = np.arange(starts[0], ends[-1], p.vision_ticks)
        vision_iv.append(np.column_stack([v_starts, v_starts + p.vision_ticks]) * tick)
        word_rows.append(vectors)
        word_iv.append(np.column_stack([bounds[:-1], bounds[1:]]) * tick)
        # words as the aligned tensors will hold them (float32, exact means of the frames)
        text_words.append(vectors.astype(np.float32))
        x = u.label[i]
        labels.append([x, max(x, 0) / 1.5, max(-x, 0) / 2, max(-x, 0) / 3, 0.0, max(-x, 0) / 4, 0.0])
        cursor = int(bounds[-1]) + 2 * int(rng.integers(5, 20))  # a pause between segments
    audio = np.concatenate(audio_rows).astype(np.float32)
    vision = np.concatenate(vision_rows).astype(np.float32)
    # real COVAREP has -inf, FACET occasionally NaN: put them in the last, signal-free dim
    audio[rng.random(audio.shape[0]) < p.nonfinite_rate, -1] = -np.inf
    vision[rng.random(vision.shape[0]) < p.nonfinite_rate, -1] = np.nan
    audio_words = _recompute_word_means(audio, np.concatenate(audio_iv), word_iv)
    vision_words = _recompute_word_means(vision, np.concatenate(vision_iv), word_iv)
    return {"text": np.concatenate(word_rows).astype(np.float32),
            "word_intervals": np.concatenate(word_iv),
            "audio": audio, "audio_intervals": np.concatenate(audio_iv),
            "vision": vision, "vision_intervals": np.concatenate(vision_iv),
            "segment_intervals": np.asarray(seg_iv), "labels": np.asarray(labels, np.float32),
            "text_words": text_words, "audio_words": audio_words, "vision_words": vision_words}


def _orthogonal_noise(rng, n: int, directions: np.ndarray, std: float) -> np.ndarray:
    """Isotropic noise orthogonal to the orthonormal signal ``directions`` (k, D).

    The signal directions avoid the last dimension, which gets plain unit noise (and the
    injected non-finite values), so the signal projections are exactly the statistics the
    Bayes posterior uses.
    """
    noise = std * rng.standard_normal((n, directions.shape[1]))
    noise[:, -1] = rng.standard_normal(n)
    noise -= (noise @ directions.T) @ directions
    return noise


def _recompute_word_means(frames, frame_iv, word_iv):
    """Word means from the frames as written, so a -inf frame makes its word -inf."""
    means, _ = average_within(frames, frame_iv, np.concatenate(word_iv))
    return np.split(means, np.cumsum([len(w) for w in word_iv])[:-1])


def generate_iemocap(out_dir: str | Path, scale: str = "quick", seed: int = 0,
                     process: IemocapProcess | None = None, sizes: dict[str, int] | None = None,
                     monte_carlo_samples: int = MONTE_CARLO_SAMPLES) -> dict:
    """Write the IEMOCAP-like set as a MulT pickle (``iemocap_data.pkl``) into ``out_dir``."""
    targets = _split_sizes("iemocap", scale, sizes)
    process = process or IemocapProcess()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = IemocapWorld.create(process, seed)
    rng = np.random.default_rng([seed, 4])
    ceilings = iemocap_ceilings(world, seed, monte_carlo_samples)
    t_max = SEQ_LEN["iemocap"]
    splits = {}
    for split in SPLITS:
        n = targets[split]
        u = _sample_iemocap(world, n, rng)
        posts = np.stack([iemocap_posterior(world, u, s) for s in SUBSETS], axis=1)
        text = np.zeros((n, t_max, TEXT_DIM), np.float32)
        audio = np.zeros((n, t_max, AUDIO_DIM), np.float32)
        vision = np.zeros((n, t_max, VISION_DIM), np.float32)
        for i in range(n):
            length = int(u.n_words[i])
            offset = t_max - length  # MulT pickles are left-padded
            text[i, offset:] = np.stack([world.vocab[t][w] for t, w in
                                         zip(u.word_type[i, :length], u.word_id[i, :length])])
            audio[i, offset:] = (u.audio_stat[i, :length, None] * world.audio_dir
                                 + _orthogonal_noise(rng, length, world.audio_dir[None], process.audio_noise))
            vision[i, offset:] = (u.vision_stat[i, :length, None] * world.vision_dir
                                  + _orthogonal_noise(rng, length, world.vision_dir[None], process.vision_noise))
        valid_steps = np.arange(t_max)[None, :] >= (t_max - u.n_words)[:, None]
        audio[(rng.random((n, t_max)) < process.nonfinite_rate) & valid_steps, -1] = -np.inf
        labels = np.zeros((n, 4, 2), np.float32)
        labels[:, :, 0] = 1
        labels[np.arange(n), u.emotion, 0] = 0
        labels[np.arange(n), u.emotion, 1] = 1
        splits[split] = {"text": text, "audio": audio, "vision": vision, "labels": labels,
                         "id": np.asarray([f"iemocap_synth_{split}_{i}" for i in range(n)]),
                         "bayes_posterior": posts.astype(np.float32)}
    metadata = {"generator": "cmnlib.data.synthetic", "generator_version": GENERATOR_VERSION,
                "dataset": "iemocap", "scale": scale if sizes is None else "custom", "seed": seed, "process": asdict(process),
                "subsets": list(SUBSETS), "emotions": list(IEMOCAP_EMOTIONS),
                "bayes_ceilings": ceilings}
    path = write_mult_pickle(out_dir / "iemocap_data.pkl", splits, metadata)
    (out_dir / "SYNTHETIC.json").write_text(json.dumps(metadata, indent=1) + "\n")
    return {"dataset": "iemocap", "scale": scale, "seed": seed, "files": [str(path)],
            "sizes": {s: len(splits[s]["labels"]) for s in SPLITS}, "bayes_ceilings": ceilings}


def generate(dataset: str, out_dir: str | Path, scale: str = "quick", seed: int = 0,
             progress: bool = False, **options) -> dict:
    """Write the synthetic ``dataset`` ('mosei' or 'iemocap') into ``out_dir``.

    ``options`` go to :func:`generate_mosei` / :func:`generate_iemocap` (e.g. ``sizes``).
    """
    if dataset == "mosei":
        return generate_mosei(out_dir, scale, seed, progress=progress, **options)
    if dataset == "iemocap":
        return generate_iemocap(out_dir, scale, seed, **options)
    raise ValueError(f"synthetic data exists for 'mosei' and 'iemocap', not {dataset!r}")
