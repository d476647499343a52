"""Fault catalog, input classes (issue 15 items 5, 14, 15, 16).

Every case goes through the CLI in-process (``workbench.cli.main.main``) or the public API and
asserts three things: the exit status (2 for a user error), a one-line message naming the
file, column or parameter, and that nothing on disk changed (run store and catalog).
"""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from data_catalog import FolderError, load, load_folder
from workbench.cli.main import main
from workbench.data import DataError, MultimodalDataset
from workbench.training.trainer import TrainConfig


def snapshot(root: Path) -> dict[str, int]:
    """Every path under ``root`` with its size: equal snapshots mean nothing was written."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")}


def cli(capsys, root: Path, *argv: str) -> tuple[int, str]:
    """Run the CLI in-process; assert it wrote nothing under ``root`` and printed one line."""
    before = snapshot(root)
    rc = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert snapshot(root) == before, "the failing command changed files on disk"
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return rc, err


def make_folder(root: Path, name: str = "study", n: int = 40, labels=None, **arrays) -> Path:
    d = root / name
    d.mkdir()
    rng = np.random.default_rng(0)
    np.save(d / "a.npy", arrays.pop("a", rng.normal(size=(n, 3))))
    np.save(d / "b.npy", arrays.pop("b", rng.normal(size=(n, 2))))
    for stem, arr in arrays.items():
        np.save(d / f"{stem}.npy", arr)
    np.save(d / "labels.npy", np.arange(n) % 2 if labels is None else labels)
    return d


# -- 5: label values, not label ranges ---------------------------------------------------------
def test_huge_label_is_one_class_not_a_billion(tmp_path, capsys):
    y = np.arange(40) % 2 * 10**9  # labels {0, 10**9}: range(max+1) would build 10**9 names
    d = make_folder(tmp_path, labels=y)
    ds = load_folder(d)
    assert ds.classes == ["0", "1000000000"] and ds.n_classes == 2
    assert np.array_equal(ds.y.numpy(), np.arange(40) % 2)  # remapped in sorted order of the values
    assert main(["datasets", "add", str(d)]) == 0  # registers; the card re-loads the same way
    assert load("study").classes == ["0", "1000000000"]


def test_too_many_distinct_labels_are_refused_naming_the_file(tmp_path, capsys):
    n = 10_002  # 10,001 distinct values: over the default bound of 10,000 classes
    d = make_folder(tmp_path, n=n, labels=np.r_[np.arange(n - 1), 0])
    rc, err = cli(capsys, tmp_path, "datasets", "add", str(d))
    assert rc == 2 and f"{d / 'labels.npy'}" in err and "10001 distinct labels" in err
    with pytest.raises(FolderError, match=r"labels.npy: column 'labels' has 13 distinct labels \(at most 12"):
        load_folder(make_folder(tmp_path, "small", n=40, labels=np.arange(40) % 13), max_classes=12)


def test_dataset_with_huge_label_index_refuses_quickly():
    with pytest.raises(DataError, match=r"label 1000000000 implies 1000000001 classes \(at most 10000\)"):
        MultimodalDataset({"a": torch.zeros(4, 2)}, torch.tensor([0, 1, 0, 10**9]), name="toy")


# -- 14: tracebacks that are now one-line errors ---------------------------------------------
TRAIN = ("train", "--dataset", "synthetic-xor", "--epochs", "1")


@pytest.mark.parametrize("extra, named", [
    (("--lr", "inf"), "lr must be a finite number in (0, 10], got inf"),
    (("--lr", "1e30"), "lr must be a finite number"),
    (("--lr", "nan"), "lr must be a finite number"),
    (("--lr", "0"), "lr must be a finite number"),
    (("--param", "unimodal_weight=nan"), "strategy parameter 'unimodal_weight' must be finite"),
    (("--param", "unimodal_weight=-inf"), "strategy parameter 'unimodal_weight' must be finite"),
    (("--param", "novalue"), "--param 'novalue': expected KEY=VALUE"),
    (("--device", "tpu9"), "device 'tpu9'"),
    (("--batch-size", "0"), "batch_size must be an integer >= 1"),
])
def test_bad_train_arguments_are_one_line_before_any_work(tmp_path, capsys, extra, named):
    rc, err = cli(capsys, tmp_path, "--runs-dir", str(tmp_path / "runs"), *TRAIN, *extra)
    assert rc == 2 and named in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    rc, err = cli(capsys, tmp_path, *TRAIN, "--device", "cuda")
    assert rc == 2 and "device 'cuda': CUDA is not available" in err


def test_complex_labels_name_the_file(tmp_path, capsys):
    d = make_folder(tmp_path, labels=(np.arange(40) % 2) + 1j)
    rc, err = cli(capsys, tmp_path, *TRAIN[:2], str(d), *TRAIN[3:])
    assert rc == 2 and f"{d / 'labels.npy'}: column 'labels': labels are complex" in err
    with pytest.raises(DataError, match="labels are complex"):
        MultimodalDataset({"a": torch.zeros(2, 1)}, np.array([0, 1 + 1j]))


def test_runs_folder_that_is_a_file_is_one_line_naming_it(tmp_path, capsys):
    blocker = tmp_path / "runs-file"
    blocker.write_text("not a folder")
    rc, err = cli(capsys, tmp_path, "--runs-dir", str(blocker / "inner"), *TRAIN)
    assert rc == 2 and f"{blocker}: is not a folder" in err
    rc, err = cli(capsys, tmp_path, "--runs-dir", str(blocker / "inner"), "demo", "--epochs", "1")
    assert rc == 2 and f"{blocker}: is not a folder" in err


def test_read_only_runs_folder_is_refused_before_training(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "ro-runs"
    runs.mkdir()
    real_access = __import__("os").access
    # root ignores permission bits, so the read-only answer is simulated where the CLI asks
    monkeypatch.setattr("workbench.store.runs.os.access", lambda p, mode: False if Path(p) == runs else real_access(p, mode))
    rc, err = cli(capsys, tmp_path, "--runs-dir", str(runs), *TRAIN)
    assert rc == 2 and f"{runs} is not writable" in err


def test_oserror_during_a_command_names_the_path(tmp_path, capsys, monkeypatch):
    target = tmp_path / "runs" / "x" / "model.pt"

    def fail(*_a, **_k):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("workbench.training.train.train", fail)
    rc, err = cli(capsys, tmp_path, *TRAIN)
    assert (rc, err) == (2, f"workbench: error: {target}: Permission denied")


def test_pickled_checkpoint_names_the_file(tmp_path, capsys, monkeypatch):
    from workbench.training import trainer as trainer_mod

    seen: dict = {}
    real_fit = trainer_mod.Trainer.fit

    class Stop(Exception):
        pass

    def spy(self, ds, splits, *, checkpoint_path=None, resume=False):
        seen["path"] = Path(checkpoint_path)
        raise Stop

    # learn where this configuration keeps its checkpoint, whatever the run-id scheme
    monkeypatch.setattr(trainer_mod.Trainer, "fit", spy)
    assert main(["--runs-dir", str(tmp_path / "runs"), *TRAIN]) == 1  # an unexpected error: status 1
    assert "run with --debug" in capsys.readouterr().err
    monkeypatch.setattr(trainer_mod.Trainer, "fit", real_fit)
    ckpt = seen["path"]
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    with open(ckpt, "wb") as fh:  # a pickle that weights_only loading must refuse
        pickle.dump({"epoch": Fraction(1, 2)}, fh, protocol=2)
    bad = ckpt.read_bytes()
    # the run store moves the unloadable file aside (kept for inspection), says which file and why,
    # and trains from scratch: the configuration is never blocked by it
    with pytest.warns(RuntimeWarning, match="checkpoint") as caught:
        assert main(["--runs-dir", str(tmp_path / "runs"), *TRAIN]) == 0
    assert any(ckpt.name in str(w.message) for w in caught)
    kept = list(tmp_path.rglob("checkpoint.bad-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == bad


def test_unexpected_errors_keep_their_traceback_with_debug(tmp_path, capsys, monkeypatch):
    def bug(*_a, **_k):
        raise KeyError("internal")

    monkeypatch.setattr("workbench.training.train.train", bug)
    rc, err = cli(capsys, tmp_path, *TRAIN)
    assert rc == 1 and "internal error: KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(["--debug", *TRAIN])


# -- 15: refused up front instead of silently accepted ---------------------------------------
def test_one_class_labels_are_refused(tmp_path, capsys):
    d = make_folder(tmp_path, labels=np.full(40, 3))
    rc, err = cli(capsys, tmp_path, "datasets", "add", str(d))
    assert rc == 2 and f"{d / 'labels.npy'}: column 'labels' holds only one class ('3')" in err
    ds = MultimodalDataset({"a": torch.randn(40, 2)}, torch.zeros(40), name="flat")
    with pytest.raises(DataError, match="dataset 'flat': labels hold 1 class"):
        ds.split(seed=0)


def test_two_files_for_one_modality_are_ambiguous(tmp_path, capsys):
    d = make_folder(tmp_path)
    pd.DataFrame(np.ones((40, 5)), columns=list("vwxyz")).to_parquet(d / "a.parquet")
    rc, err = cli(capsys, tmp_path, "datasets", "add", str(d))
    assert rc == 2 and "modality 'a' has 2 files (a.npy, a.parquet)" in err and str(d) in err
    (d / "a.parquet").unlink()
    pd.DataFrame({"label": np.arange(40) % 2}).to_csv(d / "labels.csv", index=False)
    rc, err = cli(capsys, tmp_path, "datasets", "add", str(d))
    assert rc == 2 and "2 labels files (labels.npy, labels.csv)" in err


def test_complex_features_are_refused(tmp_path, capsys):
    z = np.random.default_rng(0).normal(size=(40, 3)) * (1 + 1j)
    d = make_folder(tmp_path, a=z)  # (parquet cannot hold complex columns; .npy can)
    rc, err = cli(capsys, tmp_path, "datasets", "add", str(d))
    assert rc == 2 and f"{d / 'a.npy'}: array dtype complex128 is complex" in err
    with pytest.raises(DataError, match="modality 'a' holds complex values"):
        MultimodalDataset({"a": z}, np.arange(40) % 2)


@pytest.mark.parametrize("generator, params, named", [
    ("synthetic-xor", {"n": 0}, "n must be an integer >= 1, got 0"),
    ("synthetic-imbalance", {"n": 0}, "n must be an integer >= 1"),
    ("synthetic-imbalance", {"n_classes": 1}, "n_classes must be an integer >= 2"),
    ("synthetic-group-noise", {"n": -5}, "n must be an integer >= 1"),
    ("synthetic-missing", {"p_missing": float("nan")}, "p_missing must be a finite number"),
])
def test_generators_refuse_bad_parameters(tmp_path, generator, params, named):
    from workbench import train

    with pytest.raises(ValueError, match=named):
        train(generator, dataset_params=params, epochs=1, runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("field, value, named", [
    ("hidden", 0, "hidden must be an integer >= 1, got 0"),
    ("embed", 0, "embed must be an integer >= 1"),
    ("patience", -1, "patience must be an integer >= 0, got -1"),
    ("dropout", 1.0, "dropout must be a finite number in [0, 1)"),
    ("epochs", 2.5, "epochs must be an integer >= 0"),
])
def test_train_config_refuses_bad_fields(field, value, named):
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**{field: value})
    with pytest.raises(ValueError, match="strategy parameter 'weights' must be finite"):
        TrainConfig(strategy_params={"weights": {"a": [1.0, float("nan")]}})


def test_negative_patience_on_the_cli(tmp_path, capsys):
    rc, err = cli(capsys, tmp_path, *TRAIN, "--patience", "-1")
    assert rc == 2 and "patience must be an integer >= 0, got -1" in err


def test_too_few_samples_say_how_many_are_needed(tmp_path, capsys):
    d = make_folder(tmp_path, n=4, labels=np.array([0, 1, 0, 1]))
    rc, err = cli(capsys, tmp_path, "--runs-dir", str(tmp_path / "runs"), *TRAIN[:2], str(d), *TRAIN[3:])
    assert rc == 2 and "has 4 samples; a 0.6/0.2/0.2 train/calib/test split of 2 classes needs at least 8" in err


def test_minimum_sample_count_matches_the_split_actually_drawn():
    """The needed count is the smallest n whose drawn split holds every class in every part."""
    for n_classes, fractions in [(2, (0.6, 0.2, 0.2)), (3, (0.8, 0.1, 0.1)), (10, (0.5, 0.5, 0.0))]:
        def ds(n, c=n_classes):
            return MultimodalDataset({"a": torch.zeros(n, 1)}, torch.arange(n) % c, name="t")

        with pytest.raises(DataError, match=r"needs at least (\d+)") as info:
            ds(n_classes).split(*(), train=fractions[0], calib=fractions[1], test=fractions[2])
        need = int(info.value.args[0].rsplit("at least ", 1)[1].split()[0])
        parts = ds(need).split(train=fractions[0], calib=fractions[1], test=fractions[2], seed=0)
        sizes = [len(v) for v, f in zip(parts.as_dict().values(), fractions, strict=True) if f > 0]
        assert min(sizes) >= n_classes  # enough at the bound ...
        with pytest.raises(DataError):  # ... and not one sample fewer
            ds(need - 1).split(train=fractions[0], calib=fractions[1], test=fractions[2])


# -- 16: cards and folders -------------------------------------------------------------------
def test_card_kind_must_fit_its_shape(tmp_path, capsys):
    d = make_folder(tmp_path)
    card = {"name": "imgs", "description": "d", "source": "s", "license": "l", "loader": "folder",
            "label": {"file": "labels.npy"},
            "modalities": {"a": {"kind": "image", "shape": [3]}, "b": {"kind": "vector", "shape": [2]}}}
    (d / "card.yaml").write_text(yaml.safe_dump(card))
    rc, err = cli(capsys, tmp_path, "datasets", "add", str(d))
    assert rc == 2 and "field 'modalities.a'" in err and "kind 'image' needs a 3-D per-sample shape" in err
    card["modalities"]["a"] = {"kind": "sequence", "shape": [3, 4, 5]}
    (d / "card.yaml").write_text(yaml.safe_dump(card))
    rc, err = cli(capsys, tmp_path, "datasets", "add", str(d))
    assert rc == 2 and "kind 'sequence' needs a 2-D per-sample shape (channels, time), got [3, 4, 5]" in err
    with pytest.raises(DataError, match="modality 'a': kind 'image' needs a 3-D"):
        MultimodalDataset({"a": torch.zeros(4, 3)}, torch.arange(4) % 2, kinds={"a": "image"})


def test_folder_with_an_invalid_card_name_loads_by_path(tmp_path, capsys):
    d = make_folder(tmp_path, "study(1)")
    ds = load(str(d))
    assert ds.name == "study_1" and ds.n_samples == 40
    assert main(["datasets", "add", str(d)]) == 0
    assert "as study_1" in capsys.readouterr().out
    card = yaml.safe_load((tmp_path / "home" / "catalog" / "study_1.yaml").read_text())
    assert card["path"] == str(d)  # the folder path is kept as it is


@pytest.mark.parametrize("write", [
    lambda d: (d / "labels.npy").write_bytes(pickle.dumps([0, 1] * 20)),           # pickled labels
    lambda d: ((d / "labels.npy").unlink(), (d / "labels.csv").write_bytes(b"\x00\xff\"\n\"\"x")),
    lambda d: ((d / "labels.npy").unlink(), (d / "labels.parquet").write_bytes(b"PAR1 not parquet")),
    lambda d: (d / "groups.csv").write_bytes(b"\""),                                # unreadable groups
])
def test_unreadable_label_and_group_files_are_named(tmp_path, capsys, write):
    d = make_folder(tmp_path)
    write(d)
    rc, err = cli(capsys, tmp_path, "datasets", "add", str(d))
    bad = next(p for p in d.iterdir() if p.stem in ("labels", "groups"))
    if (d / "groups.csv").exists():
        bad = d / "groups.csv"
    assert rc == 2 and f"{bad}: " in err, err
