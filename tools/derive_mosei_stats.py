"""Derive the small real-data summary that the synthetic MOSEI-like generator imitates.

Run once by a developer who has the public CMU-MOSEI labels (the content of the SDK's
``CMU_MOSEI_Labels.csd`` as CSV) and the standard folds; the output,
``cmnlib/resources/mosei_stats.json``, is committed so that the library never needs the
raw labels at run time.

    python tools/derive_mosei_stats.py LABELS.csv FOLDS.json cmnlib/resources/mosei_stats.json
"""
import json
import sys

import numpy as np
import pandas as pd


def main(labels_csv: str, folds_json: str, out_json: str) -> None:
    labels = pd.read_csv(labels_csv)
    folds = json.load(open(folds_json))["cmu_mosei"]
    labels["duration"] = labels["end"] - labels["start"]
    bin_edges = (np.arange(-19, 20, 2) / 6).tolist()  # 1/3-wide bins centred on -3, -8/3, ..., 3
    stats = {
        "source": "CMU-MOSEI labels (CMU_MOSEI_Labels.csd as CSV) mapped onto the SDK standard folds",
        "segments_per_video": {},
        "sentiment_histogram": {"bin_edges": bin_edges},
        "non_negative_rate": {},
        "zero_rate": {},
    }
    for split, video_ids in folds.items():
        rows = labels[labels["video_id"].isin(video_ids)]
        counts = rows.groupby("video_id").size()
        # Keep the fold's order; videos without labelled segments get 0.
        stats["segments_per_video"][split] = [int(counts.get(v, 0)) for v in video_ids]
        hist, _ = np.histogram(rows["sentiment"], bins=bin_edges)
        stats["sentiment_histogram"][split] = hist.tolist()
        stats["non_negative_rate"][split] = round(float((rows["sentiment"] >= 0).mean()), 4)
        stats["zero_rate"][split] = round(float((rows["sentiment"] == 0).mean()), 4)
    quantiles = np.linspace(0, 1, 101)
    stats["segment_duration_quantiles_s"] = np.round(
        np.quantile(labels["duration"], quantiles), 3).tolist()
    with open(out_json, "w") as f:
        json.dump(stats, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
