"""Object card of a VibraVerse object: marked frequencies are the ground truth, audio rate and length right."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from data_catalog.vibraverse import FS, vibraverse
from widgets.figures.vibraverse_card import object_audio, object_card


def test_card_marks_the_ground_truth_frequencies_and_audio_is_22050_hz_one_second():
    ds = vibraverse(n=3, seed=4, keep_waveform=True)
    fig, audio = object_card(ds, 1)
    marks = next(t for t in fig.data if t.name == "modal frequencies")
    truth = ds.ground_truth["freqs"][1]
    np.testing.assert_array_equal(np.asarray(marks.y), truth[np.isfinite(truth)])
    spec = next(t for t in fig.data if t.name == "log-mel (dB)")
    assert np.asarray(spec.z).max() == pytest.approx(0.0, abs=1e-4) and np.asarray(spec.z).shape == (64, 42)
    with wave.open(io.BytesIO(audio.data)) as w:
        assert w.getframerate() == FS == 22050
        assert w.getnframes() == ds.ground_truth["waveform"].shape[1] == FS  # 1 s
    with pytest.raises(ValueError, match="keep_waveform"):
        object_card(vibraverse(n=2, seed=0), 0)
    with pytest.raises(ValueError, match="waveform"):
        object_audio(waveform=np.zeros((2, 2)), fs=FS)


def test_card_result_saved_and_drawn_by_name_with_an_audio_panel(tmp_path):
    from widgets.registry import figures_builder, panel_builder
    from workbench.analyses.vibraverse_card import ObjectCardResult, object_cards

    ds = vibraverse(n=4, seed=2, families=["plate", "membrane"], keep_waveform=True)
    cards = object_cards(ds, indices=[3, 1])
    cards.save(tmp_path / "cards")
    loaded = ObjectCardResult.load(tmp_path / "cards")
    figs = figures_builder(loaded)(loaded)  # found by name: run panels, dashboard tabs, reports
    assert len(figs) == 2
    for fig, i in zip(figs, (3, 1), strict=True):
        marks = next(t for t in fig.data if t.name == "modal frequencies")
        truth = ds.ground_truth["freqs"][i]
        np.testing.assert_allclose(np.asarray(marks.y), truth[np.isfinite(truth)], rtol=1e-12)
        spec = np.asarray(next(t for t in fig.data if t.name == "log-mel (dB)").z)
        np.testing.assert_allclose(spec, (ds.modalities["sound"][i].numpy() - 1) * 40, atol=1e-4)
    np.testing.assert_allclose(loaded.waveform(1), ds.ground_truth["waveform"][1], atol=0)
    panel = panel_builder(loaded)(loaded)
    player = next(c for c in panel.children if type(c).__name__ == "Audio")
    with wave.open(io.BytesIO(player.value)) as w:
        assert w.getframerate() == FS and w.getnframes() == FS
    with pytest.raises(ValueError, match="indices: need 1 to 16"):
        object_cards(ds, indices=[0, 0])
    with pytest.raises(ValueError, match="keep_waveform"):
        object_cards(vibraverse(n=2, seed=0), indices=[0])
