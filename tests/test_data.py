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
