"""Object card of one VibraVerse object (:mod:`data_catalog.vibraverse`, arXiv 2511.20422).

Two panels from plain arrays: the top-view height map (the ``image`` modality's first channel) and
the log-mel spectrogram with the object's ground-truth modal frequencies marked (a marker per mode
at the left edge and a dotted line across), plus an audio player (``IPython.display.Audio`` of the
rendered waveform at its sampling rate) that plays in JupyterLab. :func:`object_card` pulls all of
it out of a dataset generated with ``keep_waveform=True``; :func:`report_figures` draws every card of
a saved :class:`workbench.analyses.vibraverse_card.ObjectCardResult` (found by name: run panels,
dashboard tabs and reports show the cards).

Example
-------
>>> import numpy as np
>>> fig = object_card_figure(height=np.ones((4, 4)), spectrogram=np.zeros((3, 5)),
...                          mel_centres=np.array([100.0, 400.0, 1600.0]), freqs=np.array([300.0]), duration=1.0)
>>> [t.name for t in fig.data]
['height map', 'log-mel (dB)', 'modal frequencies']
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets.figures.captions import add_caption
from widgets.text import escaped_figure

__all__ = ["card_audio", "card_figure", "object_audio", "object_card", "object_card_figure", "report_figures"]


@escaped_figure
def object_card_figure(*, height: np.ndarray, spectrogram: np.ndarray, mel_centres: np.ndarray, freqs: np.ndarray,
                       duration: float, window: float = 0.6, title: str = "VibraVerse object") -> go.Figure:
    """Height map and log-mel spectrogram (dB) with the modal frequencies ``freqs`` (Hz) marked.

    Parameters
    ----------
    height : ndarray, shape (nx, ny)
        Top-view thickness map (pixels over a ``window`` x ``window`` m square).
    spectrogram : ndarray, shape (n_mels, frames)
        Log-mel in dB (0 at the peak).
    mel_centres : ndarray, shape (n_mels,)
        Centre frequency (Hz) of each mel band.
    freqs : ndarray
        Modal frequencies (Hz) to mark; NaN entries are dropped.
    duration : float
        Seconds spanned by the spectrogram's frames.
    """
    spectrogram = np.asarray(spectrogram, dtype=np.float64)
    mel_centres = np.asarray(mel_centres, dtype=np.float64)
    if spectrogram.ndim != 2 or spectrogram.shape[0] != len(mel_centres):
        raise ValueError(f"object_card_figure: spectrogram {spectrogram.shape} needs one row per mel centre "
                         f"({len(mel_centres)})")
    f = np.asarray(freqs, dtype=np.float64)
    f = f[np.isfinite(f)]
    h = np.asarray(height, dtype=np.float64)
    px = (np.arange(h.shape[0]) + 0.5) / h.shape[0] * window
    t = (np.arange(spectrogram.shape[1]) + 0.5) / spectrogram.shape[1] * duration
    fig = make_subplots(rows=1, cols=2, subplot_titles=("height map (top view)", "log-mel spectrogram"),
                        horizontal_spacing=0.15)
    fig.add_trace(go.Heatmap(z=h.T, x=px, y=px, colorscale="Greys", showscale=False, name="height map"), 1, 1)
    fig.add_trace(go.Heatmap(z=spectrogram, x=t, y=mel_centres, colorscale="Viridis", name="log-mel (dB)",
                             colorbar={"title": "dB"}), 1, 2)
    fig.add_trace(go.Scatter(x=np.zeros(len(f)), y=f, mode="markers", marker={"symbol": "triangle-right", "size": 9,
                                                                             "color": "red"},
                             name="modal frequencies"), 1, 2)
    for fi in f:
        fig.add_shape(type="line", x0=0, x1=duration, y0=fi, y1=fi, line={"dash": "dot", "width": 1, "color": "red"},
                      row=1, col=2)
    fig.update_xaxes(title_text="x (m)", row=1, col=1)
    fig.update_yaxes(title_text="y (m)", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=1, col=2)
    fig.update_yaxes(title_text="frequency (Hz, mel band centres)", type="log", row=1, col=2)
    fig.update_layout(title=title, showlegend=False)
    return add_caption(fig, [f"Left: thickness seen from above. Right: log-mel spectrogram of the impact; red: the "
                             f"{len(f)} rendered modal frequencies of the ground truth."])


def object_audio(*, waveform: np.ndarray, fs: int):
    """``IPython.display.Audio`` of ``waveform`` at ``fs`` Hz (a player in JupyterLab).

    Examples
    --------
    >>> a = object_audio(waveform=np.sin(np.arange(2205) / 3.0), fs=22050)
    >>> a.data[:4]
    b'RIFF'
    """
    from IPython.display import Audio

    w = np.asarray(waveform, dtype=np.float64)
    if w.ndim != 1 or not len(w) or not np.all(np.isfinite(w)):
        raise ValueError(f"object_audio: waveform must be a finite 1-D signal, got shape {w.shape}")
    if fs <= 0:
        raise ValueError(f"object_audio: fs must be > 0, got {fs!r}")
    return Audio(data=w, rate=int(fs))


@escaped_figure
def card_figure(result, obj: int) -> go.Figure:
    """The card figure of object ``obj`` of an :class:`~workbench.analyses.vibraverse_card.ObjectCardResult`."""
    o = result.objects.set_index("object").loc[obj] if obj in set(result.objects["object"]) else None
    if o is None:
        raise ValueError(f"object: {obj!r} has no card here (objects {result.objects['object'].tolist()})")
    return object_card_figure(height=result.height(obj), spectrogram=result.spectrogram(obj),
                              mel_centres=np.asarray(result.mel_centres), freqs=result.freqs(obj),
                              duration=result.duration, window=result.window,
                              title=f"object {obj}: {o['family']} of {o['material']}, f1 = {o['f1']:.0f} Hz")


def card_audio(result, obj: int):
    """The audio player of object ``obj`` of an :class:`~workbench.analyses.vibraverse_card.ObjectCardResult`."""
    return object_audio(waveform=result.waveform(obj), fs=result.fs)


def object_card(ds, index: int) -> tuple[go.Figure, object]:
    """Card figure and audio player of object ``index`` of a ``vibraverse(..., keep_waveform=True)`` dataset."""
    from workbench.analyses.vibraverse_card import object_cards

    if not isinstance(index, (int, np.integer)) or not 0 <= index < len(ds.y):
        raise ValueError(f"object_card: index must be in [0, {len(ds.y)}), got {index!r}")
    try:
        cards = object_cards(ds, indices=[int(index)])
    except ValueError as err:
        raise ValueError(f"object_card: {err}") from None
    return card_figure(cards, int(index)), card_audio(cards, int(index))


def report_figures(result) -> list[go.Figure]:
    """One card figure per object of the result."""
    return [card_figure(result, int(i)) for i in result.objects["object"]]
