"""Splits that keep groups whole (by night): no group cut across splits, shares of groups, clear errors,
and train() splits sleep sequences by night by default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from data_catalog.sleep import night_splits, synthetic_psg
from workbench.data import DataError, MultimodalDataset
from workbench.training.train import default_split_by, train


def _ds(n_groups: int = 10, per: int = 3) -> MultimodalDataset:
    n = n_groups * per
    return MultimodalDataset({"a": torch.randn(n, 2)}, torch.arange(n) % 2,
                             groups=pd.DataFrame({"patient": np.repeat([f"p{i}" for i in range(n_groups)], per)}))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_group_is_cut_and_the_shares_are_of_groups(seed):
    ds = _ds()
    s = ds.split(by="patient", seed=seed)
    sets = [set(ds.groups["patient"].iloc[i]) for i in (s.train, s.calib, s.test)]
    assert [len(x) for x in sets] == [6, 2, 2]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sorted(np.r_[s.train, s.calib, s.test]) == list(range(ds.n_samples))
    assert ds.split(by="patient", seed=seed).test.tolist() == s.test.tolist()  # seeded


def test_bad_group_splits_fail_clearly():
    ds = _ds(n_groups=2)
    with pytest.raises(DataError, match="no such group column"):
        ds.split(by="night")
    with pytest.raises(DataError, match="one in training"):
        ds.split(by="patient", train=0.2, calib=0.4, test=0.4)
    with pytest.raises(ValueError, match="sum to 1"):
        ds.split(by="patient", train=0.9, calib=0.2, test=0.2)


def test_night_splits_and_train_keep_nights_whole(tmp_path):
    ds = synthetic_psg(n_nights=5, n_epochs=42, seq_len=21, seed=0)
    assert default_split_by(ds) == "night" and default_split_by(_ds()) is None
    s = night_splits(ds, seed=0)
    assert [len(set(ds.groups["night"].iloc[i])) for i in (s.train, s.calib, s.test)] == [3, 1, 1]
    run = train(ds, task="coresleep", task_params=dict(d_model=8, heads=2, inner_layers=1, outer_layers=1, ff=16),
                epochs=1, batch_size=4, runs_dir=tmp_path, progress=False)
    nights = [set(ds.groups["night"].iloc[i]) for i in (run.splits.train, run.splits.calib, run.splits.test)]
    assert not (nights[0] & nights[2] or nights[0] & nights[1] or nights[1] & nights[2])
    assert run.splits.test.tolist() == ds.split(by="night", seed=0).test.tolist()
