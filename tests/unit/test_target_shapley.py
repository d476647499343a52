"""Which modality matters for which target (workbench.analyses.target_shapley) on VibraVerse, known answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from data_catalog.vibraverse import vibraverse
from workbench.analyses.target_shapley import relabel, target_shapley


@pytest.fixture(scope="module")
def result():
    # shape (family one-hot, log dimensions: no material), a pure-noise player, and the sound
    ds = vibraverse(n=300, seed=1)
    noise = torch.as_tensor(np.random.default_rng(0).normal(size=(300, 8)), dtype=torch.float32)
    ds = dataclasses.replace(
        ds,
        modalities={
            "shape": ds.modalities["shape"],
            "noise": noise,
            "sound": ds.modalities["sound"],
        },
        kinds={"shape": "vector", "noise": "vector", "sound": "sequence"},
    )
    return target_shapley(
        ds,
        targets=("material", "family"),
        value_method="retrain",
        epochs=30,
        patience=3,
        progress=False,
    )


def test_material_value_is_on_the_sound_and_noise_gets_none(result):
    t = result.modalities.set_index(["target", "modality"])
    # only the sound carries the material (shape and noise are drawn independently of it)
    assert 0.9 < t.loc[("material", "sound"), "share"] < 1.1
    assert t.loc[("material", "sound"), "mean_ci_lower"] > 0.5  # nats, of log(7) = 1.95 at most
    assert abs(t.loc[("material", "shape"), "share"]) < 0.1
    for target in (
        "material",
        "family",
    ):  # a pure-noise player: its interval holds 0, its share is ~0
        row = t.loc[(target, "noise")]
        assert (
            row["mean_ci_lower"] < 0.02 and row["mean_ci_upper"] > -0.1 and abs(row["share"]) < 0.1
        )
    # efficiency: each target's mean values sum to its full coalition's value
    for target, sub in result.modalities.groupby("target"):
        full = result.coalitions[
            (result.coalitions["target"] == target)
            & (result.coalitions["split"] == "calib")
            & (result.coalitions["size"] == 3)
        ]
        assert sub["mean"].sum() == pytest.approx(float(full["value"].iloc[0]), abs=1e-6)


def test_family_value_is_mostly_on_the_shape(result):
    t = result.modalities.set_index(["target", "modality"])
    # the shape vector's one-hot is the family, so v(shape) = v(all) >= v(sound) and phi_shape >= phi_sound;
    # the sound only partly tells a bar from a plate (their mode ratios differ)
    assert t.loc[("family", "shape"), "share"] > 0.5
    assert t.loc[("family", "shape"), "mean_ci_lower"] > t.loc[("family", "sound"), "mean"]
    assert (
        t.loc[("family", "shape"), "full_accuracy"] > 0.95
        and t.loc[("family", "shape"), "n_classes"] == 2
    )


def test_figures_found_by_name_draw_the_table(result):
    from widgets.registry import figures_builder

    value, share = figures_builder(result)(result)
    bars = {tr.name: tr for tr in value.data}
    assert set(bars) == {"material", "family"}
    np.testing.assert_allclose(
        bars["material"].y, result.modalities.query("target == 'material'")["mean"]
    )
    assert {tr.name for tr in share.data} == {"shape", "noise", "sound"}


def test_bad_targets_one_line_errors():
    ds = vibraverse(n=20, seed=0, materials=["steel"])
    with pytest.raises(ValueError, match="'colour' is not a groups column"):
        target_shapley(ds, targets=("colour",))
    with pytest.raises(ValueError, match="single value"):
        relabel(ds, "material")
    with pytest.raises(ValueError, match="distinct"):
        target_shapley(ds, targets=("family", "family"))
