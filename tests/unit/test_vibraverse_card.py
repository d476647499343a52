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
