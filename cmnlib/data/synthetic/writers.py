"""Writing the synthetic sets in the real formats: SDK ``.csd`` files and MulT pickles,
at the real split sizes (``paper``) or small ones (``quick``), with their ceilings."""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from importlib.resources import files
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ...config import IEMOCAP_EMOTIONS
from ..csd import (MOSEI_RECIPE, SYNTHETIC_CUES, SYNTHETIC_TRUTH, ComputationalSequence, average_within, sdk_metadata,
                   write_csd)
from ..mult_pkl import write_mult_pickle
from ..split import SPLITS
from .ceilings import MONTE_CARLO_SAMPLES, iemocap_ceilings, mosei_ceilings
from .process import (AMBIGUOUS, AUDIO_DIM, SEQ_LEN, SUBSETS, TEXT_DIM, VISION_DIM, IemocapProcess, IemocapWorld,
                      MoseiProcess, MoseiUtterances, MoseiWorld, iemocap_posterior, mosei_posterior, sample_iemocap,
                      sample_mosei)

GENERATOR_VERSION = 2  # 2: smaller quick splits (CI time)

# Split sizes. 'paper' = the MulT pickles' sizes; 'quick' = small enough for 2 CPU cores.
SPLIT_SIZES = {
    "mosei": {"paper": {"train": 16326, "valid": 1871, "test": 4659},
              "quick": {"train": 1800, "valid": 400, "test": 1000}},
    "iemocap": {"paper": {"train": 2717, "valid": 798, "test": 938},
                "quick": {"train": 1200, "valid": 300, "test": 600}},
}


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


def n_words_sampler(process: MoseiProcess):
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
    sampler = n_words_sampler(process)
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
        everything = sample_mosei(world, sampler(rng, sum(counts)), rng)
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
                "dataset": "mosei", "scale": scale if sizes is None else "custom", "seed": seed,
                "process": asdict(process),
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
        u = sample_iemocap(world, n, rng)
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
                "dataset": "iemocap", "scale": scale if sizes is None else "custom", "seed": seed,
                "process": asdict(process),
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
