"""The generative processes of the synthetic stand-in (see :mod:`cmnlib.data.synthetic`):
the worlds, sampling utterances, and the exact posterior of every utterance."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp, ndtr

from ...config import DATASETS

SUBSETS = ("L", "A", "V", "LA", "LAV")
# the real files' feature sizes (the registry's MOSEI entry; IEMOCAP's are the same)
TEXT_DIM, AUDIO_DIM, VISION_DIM = (DATASETS["mosei"].feature_dims[m] for m in ("text", "audio", "vision"))
SEQ_LEN = {"mosei": 50, "iemocap": 20}  # the word-aligned pickles' lengths


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


def sample_mosei(world: MoseiWorld, n_words: np.ndarray, rng: np.random.Generator) -> MoseiUtterances:
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


def sample_iemocap(world: IemocapWorld, n: int, rng: np.random.Generator) -> IemocapUtterances:
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
