import numpy as np
import pandas as pd
import pytest
import torch

from workbench.data import DataError, MultimodalDataset


def make(n=100):
    return MultimodalDataset({"a": torch.randn(n, 4), "b": torch.randn(n, 2, 10)}, torch.arange(n) % 3,
                             groups=pd.DataFrame({"sex": ["F", "M"] * (n // 2)}), name="toy")


def test_kinds_shapes_and_repr():
    ds = make()
    assert ds.kinds == {"a": "vector", "b": "sequence"}
    assert ds.shapes == {"a": (4,), "b": (2, 10)}
    assert ds.n_classes == 3 and "toy" in repr(ds)


def test_split_is_seeded_stratified_and_disjoint():
    ds = make(300)
    s1, s2 = ds.split(seed=3), ds.split(seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(s1.as_dict().values(), s2.as_dict().values(), strict=True))
    all_idx = np.concatenate(list(s1.as_dict().values()))
    assert len(np.unique(all_idx)) == 300
    assert (len(s1.train), len(s1.calib), len(s1.test)) == (180, 60, 60)
    for part in s1.as_dict().values():  # stratified: each class exactly a third
        counts = np.bincount(ds.y.numpy()[part], minlength=3)
        assert counts.max() - counts.min() <= 1
    assert not np.array_equal(ds.split(seed=4).train, s1.train)


def test_errors_name_the_modality():
    with pytest.raises(DataError, match="modality 'b' has 5 samples"):
        MultimodalDataset({"a": torch.randn(6, 2), "b": torch.randn(5, 2)}, torch.zeros(6))
    x = torch.randn(6, 2)
    x[2, 1] = float("nan")
    with pytest.raises(DataError, match="modality 'a' has NaN"):
        MultimodalDataset({"a": x}, torch.zeros(6))
    with pytest.raises(DataError, match="unknown modalities"):
        MultimodalDataset({"a": torch.randn(6, 2)}, torch.zeros(6), mask={"z": torch.ones(6)})


def test_subset_and_select_modalities():
    ds = make()
    sub = ds.subset(np.array([0, 5, 7]))
    assert sub.n_samples == 3 and list(sub.groups["sex"]) == ["F", "M", "M"]
    assert torch.equal(sub.modalities["a"][1], ds.modalities["a"][5])
    assert ds.select_modalities(["b"]).modality_names == ["b"]
    with pytest.raises(DataError, match="no modality 'c'"):
        ds.select_modalities(["c"])


def test_kind_shape_rule_is_shared_and_exact():
    from workbench.data import kind_shape_error

    assert [kind_shape_error(k, s) for k, s in [("vector", [5]), ("sequence", [2, 9]), ("image", [3, 8, 8])]] == [None] * 3
    assert "needs a 1-D" in kind_shape_error("vector", [2, 3])
    assert "needs a 3-D per-sample shape (channels, height, width), got [64] (1-D)" in kind_shape_error("image", [64])
    assert "unknown kind" in kind_shape_error("hologram", [1])


def test_fractional_labels_are_refused_not_truncated():
    # the old cast to int64 turned 0.5 into class 0 without a word
    with pytest.raises(DataError, match=r"dataset 'toy': labels must be integer class indices, got e.g. 0.5"):
        MultimodalDataset({"a": torch.zeros(3, 1)}, np.array([0.0, 0.5, 1.0]), name="toy")
    with pytest.raises(DataError, match="labels hold NaN"):
        MultimodalDataset({"a": torch.zeros(2, 1)}, np.array([0.0, np.nan]))
    assert MultimodalDataset({"a": torch.zeros(2, 1)}, np.array([0.0, 1.0])).y.tolist() == [0, 1]
    with pytest.raises(DataError, match="label 2 but only 2 classes"):
        MultimodalDataset({"a": torch.zeros(3, 1)}, [0, 1, 2], classes=["x", "y"])


def test_split_fractions_are_checked_before_splitting():
    ds = make(100)
    with pytest.raises(ValueError, match=r"split fraction 'train' must be in \[0, 1\], got 1.2"):
        ds.split(train=1.2, calib=-0.2, test=0.0)
    assert ds.check_splittable() is None  # 100 samples of 3 classes: fine
    with pytest.raises(DataError, match="3 classes needs at least 13"):
        make(12).split()
