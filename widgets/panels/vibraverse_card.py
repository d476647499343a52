"""JupyterLab panel of VibraVerse object cards: each card's figure and an audio player beside it.

Takes a :class:`workbench.analyses.vibraverse_card.ObjectCardResult`, draws with
:mod:`widgets.figures.vibraverse_card`; an object selector switches the card and its sound. It
computes nothing. (Run panels, dashboard tabs and reports show the card figures found by name; the
audio player is this panel's.)
"""

from __future__ import annotations

import ipywidgets as W

from widgets.figures.vibraverse_card import card_audio, card_figure
from widgets.panels.view import FigureView, PanelBox

__all__ = ["object_card_panel"]


def object_card_panel(result) -> PanelBox:
    """Card figure and WAV player of the selected object."""
    objects = [int(i) for i in result.objects["object"]]
    labels = [
        (f"object {i}: {f} of {m}", i)
        for i, f, m in zip(
            objects, result.objects["family"], result.objects["material"], strict=True
        )
    ]
    pick = W.Dropdown(options=labels, value=objects[0], description="object")
    fig = FigureView(card_figure(result, objects[0]))
    player = W.Audio(
        value=card_audio(result, objects[0]).data, format="wav", autoplay=False, loop=False
    )

    def refresh(_=None) -> None:
        fig.show(card_figure(result, pick.value))
        player.value = card_audio(result, pick.value).data

    pick.observe(refresh, names="value")
    return PanelBox([pick, fig, player] if len(objects) > 1 else [fig, player])
