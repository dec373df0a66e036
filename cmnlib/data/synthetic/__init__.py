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
import ast

from .ceilings import MONTE_CARLO_SAMPLES, f1_from_confusion, iemocap_ceilings, mosei_ceilings
from .process import (AMBIGUOUS, MOSEI_TYPES, NEGATIVE, POSITIVE, SEQ_LEN, SUBSETS, IemocapProcess, IemocapWorld,
                      MoseiProcess, MoseiWorld, iemocap_posterior, mosei_posterior, sample_iemocap, sample_mosei)
from .writers import (GENERATOR_VERSION, SPLIT_SIZES, generate, generate_iemocap, generate_mosei,
                      n_words_sampler)


def mosei_world(file_metadata: dict) -> MoseiWorld | None:
    """The MOSEI-like generator's world (vocabulary and all) that wrote a file with this
    metadata, rebuilt from its process and seed; None for any other file (real data, the
    IEMOCAP-like generator)."""
    if file_metadata.get("generator") != "cmnlib.data.synthetic" or file_metadata.get("dataset") != "mosei":
        return None
    process = file_metadata["process"]
    process = MoseiProcess(**(ast.literal_eval(process) if isinstance(process, str) else process))
    return MoseiWorld.create(process, int(file_metadata["seed"]))

__all__ = ["SUBSETS", "GENERATOR_VERSION", "SPLIT_SIZES", "SEQ_LEN", "MONTE_CARLO_SAMPLES", "MoseiProcess",
           "MoseiWorld", "IemocapProcess", "IemocapWorld", "sample_mosei", "sample_iemocap", "mosei_posterior",
           "iemocap_posterior", "mosei_ceilings", "iemocap_ceilings", "f1_from_confusion", "n_words_sampler",
           "generate", "generate_mosei", "generate_iemocap", "AMBIGUOUS", "NEGATIVE", "POSITIVE", "MOSEI_TYPES",
           "mosei_world"]
