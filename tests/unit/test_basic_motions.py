"""BasicMotions (real accelerometer + gyroscope) read from the sktime wheel in place; the .ts reader
on files the test writes; a robustness check on the real sensors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from data_catalog.basic_motions import archive_splits, basic_motions, basic_motions_dir, read_ts

HAS_SKTIME = importlib.util.find_spec("sktime") is not None
needs_sktime = pytest.mark.skipif(not HAS_SKTIME, reason="BasicMotions ships inside sktime: "
                                  "pip install --no-deps sktime==1.2.0")


def test_ts_reader_reads_values_labels_and_declared_classes(tmp_path):
    path = tmp_path / "toy.ts"
    path.write_text("# comment\n@problemName toy\n@univariate false\n@dimensions 2\n@classLabel true up down\n"
                    "@data\n1.5,2,3:4,5,6e-1:down\n-1,0,1:2,2,2:up\n")
    x, labels, classes = read_ts(path)
    assert x.dtype == np.float32 and x.shape == (2, 2, 3)
    assert x[0].tolist() == [[1.5, 2.0, 3.0], [4.0, 5.0, pytest.approx(0.6)]]
    assert labels.tolist() == ["down", "up"] and classes == ["up", "down"]


@pytest.mark.parametrize(("data", "message"), [
    ("1,2:3:a\n", "line 3: dimensions of unequal length"),
    ("1,2:3,4:a\n1,2,3:4,5,6:a\n", "line 4: .*different shape"),
    ("1,x:3,4:a\n", "line 3: a value is not a number"),
    ("1,2:3,4:zzz\n", "line 3: label 'zzz' is not among"),
    ("", "no cases after @data"),
])
def test_ts_reader_names_file_and_line_of_bad_input(tmp_path, data, message):
    path = tmp_path / "bad.ts"
    path.write_text("@classLabel true a b\n@data\n" + data)
    with pytest.raises(ValueError, match=message) as err:
        read_ts(path)
    assert "bad.ts" in str(err.value)


@needs_sktime
def test_basic_motions_is_read_in_place_from_the_installed_wheel():
    ds = basic_motions()
    assert ds.shapes == {"accelerometer": (3, 100), "gyroscope": (3, 100)}
    assert ds.classes == ["Standing", "Running", "Walking", "Badminton"]
    assert np.bincount(ds.y.numpy()).tolist() == [20, 20, 20, 20]
    assert ds.groups["split"].value_counts().to_dict() == {"train": 40, "test": 40}
    # the first value of the first case, read straight from the file's first data line
    lines = (basic_motions_dir() / "BasicMotions_TRAIN.ts").read_text().splitlines()
    first = lines[[line.strip().lower() for line in lines].index("@data") + 1]
    assert float(ds.modalities["accelerometer"][0, 0, 0]) == pytest.approx(float(first.split(",")[0]))
    gyro0 = first.split(":")[3].split(",")
    assert ds.modalities["gyroscope"][0, 0].tolist() == pytest.approx([float(v) for v in gyro0])
    s = archive_splits(ds)
    assert len(s.test) == 40 and len(s.train) + len(s.calib) == 40 and not set(s.train) & set(s.calib)
    assert (ds.groups["split"].to_numpy()[s.test] == "test").all()


@needs_sktime
def test_real_sensors_robustness_one_model_degrades_to_chance_without_either():
    from workbench import train
    from workbench.analyses.robustness import robustness_analysis

    ds = basic_motions()
    run = train(ds, epochs=40, save=False, progress=False)
    res = robustness_analysis(run.model, ds, run.splits.test, missing_rates=(0.0, 1.0), snr_db=(0.0,), n_boot=100,
                              progress=False)
    acc = res.curves.query("metric == 'accuracy'").set_index(["perturbation", "modality", "severity"])["value"]
    assert acc[("missing", "all", 0.0)] == pytest.approx(run.metrics["test"]["fused"]) and acc[("missing", "all", 0.0)] > 0.8
    # with both sensors gone the model has nothing: it predicts one class (a quarter of a balanced test set)
    assert acc[("missing", "all", 1.0)] <= 0.3
    for m in ds.modality_names:
        assert acc[("missing", m, 1.0)] < acc[("missing", m, 0.0)]
