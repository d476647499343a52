import numpy as np
import pandas as pd
import pytest
import yaml

from data_catalog import (
    CardError,
    FolderError,
    catalog_table,
    get_card,
    load,
    load_folder,
    register_folder,
)
from data_catalog.cards_schema import parse_card


def test_mfeat_is_the_real_uci_set():
    ds = load("mfeat")
    assert ds.n_samples == 2000 and ds.n_classes == 10
    assert ds.shapes == {"fourier": (76,), "profile": (216,), "karhunen": (64,), "pixel": (240,),
                         "zernike": (47,), "morphological": (6,)}
    assert np.bincount(ds.y.numpy()).tolist() == [200] * 10


def test_catalog_table_lists_every_card():
    table = catalog_table()
    assert {"mfeat", "synthetic-imbalance", "synthetic-xor", "synthetic-group-noise", "synthetic-missing"} <= set(table["name"])
    assert {"name", "modalities", "classes", "groups", "source", "license"} <= set(table.columns)


def test_card_validation_names_card_and_field():
    data = yaml.safe_load(open(get_card.__globals__["CARDS_DIR"] / "mfeat.yaml"))
    data["modalities"]["fourier"]["kind"] = "hologram"
    with pytest.raises(CardError, match=r"dataset card test\.yaml: field 'modalities.fourier.kind'"):
        parse_card(data, origin="test.yaml")
    del data["license"]
    with pytest.raises(CardError, match="field 'license'"):
        parse_card(data, origin="test.yaml")


def test_unknown_dataset_lists_known():
    with pytest.raises(CardError, match="no dataset called 'nope'.*mfeat"):
        load("nope")


def test_synthetic_generators_are_seeded_and_carry_ground_truth():
    a, b = load("synthetic-imbalance", seed=5, n=100), load("synthetic-imbalance", seed=5, n=100)
    assert np.array_equal(a.modalities["weak"].numpy(), b.modalities["weak"].numpy())
    assert a.ground_truth["dominant"] == "strong"
    miss = load("synthetic-missing")
    present = np.stack([miss.presence(m).numpy() for m in miss.modality_names], 1)
    assert present.any(1).all() and 0.2 < 1 - present.mean() < 0.35
    grp = load("synthetic-group-noise")
    assert set(grp.groups["group"]) == {"A", "B"}
    xor = load("synthetic-xor")
    y, a_bit, b_bit = xor.y.numpy(), xor.modalities["a"][:, 0] > 0, xor.modalities["b"][:, 0] > 0
    assert ((a_bit ^ b_bit).numpy() == y).mean() > 0.75  # the interaction carries the label
    assert abs((a_bit.numpy() == y).mean() - 0.5) < 0.05  # one modality alone is at chance
    wide = load("synthetic-imbalance", snr=[1, 2, 3], dims=[4, 5, 6])
    assert wide.modality_names == ["m0", "m1", "m2"] and wide.ground_truth["dominant"] == "m2"


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "study"
    d.mkdir()
    rng = np.random.default_rng(0)
    np.save(d / "audio.npy", rng.normal(size=(30, 4)))
    pd.DataFrame(rng.normal(size=(30, 3)), columns=["x", "y", "z"]).to_parquet(d / "video.parquet")
    pd.DataFrame({"label": np.arange(30) % 2}).to_csv(d / "labels.csv", index=False)
    pd.DataFrame({"site": ["a", "b", "c"] * 10}).to_csv(d / "groups.csv", index=False)
    return d


def test_user_folder_becomes_a_dataset(folder, tmp_path):
    ds = load_folder(folder)
    assert ds.modality_names == ["audio", "video"] and ds.shapes["video"] == (3,)
    assert list(ds.groups.columns) == ["site"] and ds.n_classes == 2
    card_path = register_folder(folder, catalog_dir=tmp_path / "cat", name="study1")
    assert card_path.exists() and get_card.__module__  # written only after a clean load
    assert load_folder(folder).n_samples == 30


@pytest.mark.parametrize("breakage, message", [
    (lambda d: np.save(d / "audio.npy", np.zeros((29, 4))), r"modality 'audio' has 29 samples but labels.csv has 30"),
    (lambda d: np.save(d / "audio.npy", np.full((30, 4), np.nan)), r"audio.npy: modality 'audio' has NaN"),
    (lambda d: pd.DataFrame({"label": ["cat", "dog"] * 15}).to_csv(d / "labels.csv", index=False), "non-numeric labels"),
    (lambda d: (d / "audio.npy").write_bytes(b""), r"audio.npy: file is empty"),
    (lambda d: (d / "card.yaml").write_text(yaml.safe_dump({
        "name": "s", "description": "d", "source": "s", "license": "l", "loader": "folder",
        "label": {"file": "labels.csv"}, "modalities": {"lidar": {"kind": "vector", "shape": [4]}}})),
     "modality 'lidar' has no file"),
])
def test_bad_folders_fail_clearly_and_write_nothing(folder, tmp_path, breakage, message):
    breakage(folder)
    catalog = tmp_path / "cat"
    with pytest.raises(FolderError, match=message):
        register_folder(folder, catalog_dir=catalog, name="broken")
    assert not catalog.exists() or not any(catalog.iterdir())


def test_folder_names_become_valid_card_names():
    from data_catalog.folder import sanitize_name

    assert [sanitize_name(s) for s in ["study(1)", "my study", "..hidden", "ok-name_2.v1", "(((", "é"]] == [
        "study_1", "my_study", "hidden", "ok-name_2.v1", "dataset", "dataset"]


def test_card_schema_checks_kind_against_shape():
    data = yaml.safe_load(open(get_card.__globals__["CARDS_DIR"] / "mfeat.yaml"))
    data["modalities"]["fourier"] = {"kind": "image", "shape": [76]}
    with pytest.raises(CardError, match=r"field 'modalities.fourier'.*kind 'image' needs a 3-D"):
        parse_card(data, origin="test.yaml")
    data["modalities"]["fourier"] = {"kind": "image", "shape": [1, 8, 8]}
    assert parse_card(data, origin="test.yaml").modalities["fourier"].kind == "image"


def test_labels_are_remapped_from_the_values_present(folder):
    pd.DataFrame({"label": [3, 7, 11] * 10}).to_csv(folder / "labels.csv", index=False)
    ds = load_folder(folder)
    assert ds.classes == ["3", "7", "11"] and ds.y.tolist()[:3] == [0, 1, 2]
