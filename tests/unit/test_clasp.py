"""CLASP alignment on VibraVerse: retrieval beats chance; result, figures and errors."""

from __future__ import annotations

import pytest

from data_catalog.vibraverse import vibraverse
from workbench.analyses.clasp import ClaspResult, clasp_analysis


@pytest.fixture(scope="module")
def result() -> ClaspResult:
    # 600 objects, 15 epochs: about 15 s on the 2-core CPU; measured sound->shape R@10 0.35 (chance 0.083)
    return clasp_analysis(vibraverse(n=600, seed=0), seeds=(0,), epochs=15, n_boot=50)


def test_sound_to_shape_retrieval_beats_chance(result):
    s = result.summary.set_index("name")
    for direction in ("sound->shape R@10", "shape->sound R@10", "sound->image R@10"):
        assert s.loc[direction, "value"] > 2 * s.loc[direction, "chance"], direction
    # shape and image share the geometry exactly, so they align far better than with sound
    assert s.loc["shape->image R@10", "value"] > 0.6
    # bootstrap interval over queries excludes chance for the headline direction
    r = result.retrieval
    row = r[(r["query"] == "sound") & (r["gallery"] == "shape") & (r["metric"] == "R@10")].iloc[0]
    assert row["value_ci_lower"] > row["chance"]


def test_sound_embedding_carries_material(result):
    s = result.summary.set_index("name")
    # the shape views carry no material: their probes sit near the majority class, sound's far above it
    assert s.loc["z_sound", "value"] > s.loc["z_sound", "chance"] + 0.15
    assert s.loc["z_shape", "value"] < s.loc["z_sound", "value"] - 0.15


def test_figures_and_save_roundtrip(result, tmp_path):
    from widgets.figures.clasp import report_figures

    figs = report_figures(result)
    assert len(figs) == 4  # R@1, R@5, R@10, probes
    assert all(f.layout.annotations for f in figs)
    result.save(tmp_path / "clasp")
    back = ClaspResult.load(tmp_path / "clasp")
    assert back.summary.equals(result.summary)


def test_bad_parameters():
    ds = vibraverse(n=20, seed=0)
    with pytest.raises(ValueError, match="seeds"):
        clasp_analysis(ds, seeds=())
    with pytest.raises(ValueError, match="sound 'audio'"):
        clasp_analysis(ds, sound="audio")
    with pytest.raises(ValueError, match="level"):
        clasp_analysis(ds, level=1.5)
