"""sersk with pandas, as most corpora's metadata is a DataFrame: columns whose index is not 0..n-1
(a filtered or shuffled table) are read by position, and one-column tables as their column."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from sersk import AudioLoader, make_pipeline
from sersk.evaluation import clip_predictions, run_reference_protocol
from sersk.plotting import plot_log_mels
from sersk.utils.synthetic import make_tone

pd = pytest.importorskip("pandas")


def tiny_pipeline():
    pipe = make_pipeline(n_augmentations=1, max_epochs=1, device="cpu", random_state=0)
    return pipe.set_params(net__module__filters=(4, 4, 8, 8), net__module__hidden_size=8)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """24 tones of 0.8 s (3 speakers x 2 emotions x 4 texts) as a shuffled DataFrame: its index is
    a permutation, so reading by label and by position differ."""
    folder = tmp_path_factory.mktemp("corpus")
    rows = []
    for i, speaker in enumerate(("03", "08", "09")):
        for emotion, freq in (("anger", 1800.0), ("sadness", 220.0)):
            for text in ("a01", "a02", "a04", "a05"):
                path = folder / f"{speaker}{text}{emotion[0].upper()}a.wav"
                sf.write(path, make_tone(freq * (1 + 0.05 * i), 0.8), 16000)
                rows.append({"path": str(path), "emotion": emotion, "speaker": speaker})
    return pd.DataFrame(rows).sample(frac=1, random_state=3)


def test_a_pipeline_on_shuffled_columns_predicts_as_on_arrays(table):
    by_column = tiny_pipeline().fit(table["path"], table["emotion"]).predict_proba(table["path"])
    by_array = tiny_pipeline().fit(table["path"].to_numpy(), table["emotion"].to_numpy()).predict_proba(
        table["path"].to_numpy()
    )
    np.testing.assert_array_equal(by_column, by_array)


def test_a_protocol_given_a_one_column_table_records_its_paths(table):
    """np.asarray of a one-column DataFrame is (n, 1): each recorded path read "['/.../03a01Aa.wav']"
    (a pandas review)."""
    as_table = run_reference_protocol(table[["path"]], table["emotion"], pipeline=tiny_pipeline(), random_state=0)
    as_column = run_reference_protocol(table["path"], table["emotion"], pipeline=tiny_pipeline(), random_state=0)
    assert as_table["predictions"] == as_column["predictions"]
    assert {r["path"] for r in as_table["predictions"]} <= set(table["path"])
    assert all(type(v) in (int, float) for epoch in as_table["history"] for v in epoch.values() if v is not None)
    json.dumps(as_table)


def test_clip_predictions_take_a_one_column_table_of_files(table):
    records = clip_predictions(table[["path"]], table["emotion"], table["emotion"])
    assert [r["path"] for r in records] == list(table["path"])  # listing the table gave its column name


def test_spectrogram_titles_from_a_shuffled_column_follow_the_spectrograms(table):
    """titles[i] read a Series by label: the panels of a shuffled table got other clips' titles."""
    titles = table["emotion"].iloc[:3] + "/" + table["speaker"].iloc[:3]  # the index: 3 of a permutation
    fig = plot_log_mels([np.full((128, 10), float(i)) for i in range(3)], titles=titles)
    assert [ax.get_title() for ax in fig.axes[:3]] == list(titles)


def test_an_empty_cell_among_the_paths_is_named(table):
    paths = table["path"].copy()
    paths.iloc[1] = np.nan  # a left merge's missing match
    with pytest.raises(ValueError, match=r"clip 1 is nan, neither a path nor a waveform \(a missing value\?\)"):
        AudioLoader().fit_transform(paths)
