import pandas as pd

from widgets.figures.run import accuracy_figure, history_figure


def test_history_figure_has_a_line_per_accuracy_series():
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_acc": [0.5, 0.8],
                            "heldout_acc": [0.4, 0.7], "heldout_acc_audio": [0.3, 0.6]})
    fig = history_figure(history)
    assert sorted(t.name for t in fig.data) == ["heldout_acc", "train_acc", "unimodal: audio"]
    assert list(fig.data[0].x) == [1, 2]


def test_accuracy_figure_shows_one_split():
    acc = pd.DataFrame({"split": ["test", "test", "train"], "model": ["fused", "audio", "fused"],
                        "accuracy": [0.9, 0.6, 1.0], "n": [10, 10, 30]})
    fig = accuracy_figure(acc, split="test")
    bars = {x: y for t in fig.data for x, y in zip(t.x, t.y, strict=True)}
    assert bars == {"fused": 0.9, "audio": 0.6}
