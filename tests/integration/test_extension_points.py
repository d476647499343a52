"""Adding a thing touches one place, and none of them a package file (DESIGN.md, "Layout"):
a strategy is one class registered by decorator, an encoder is any ``nn.Module`` passed in,
a fusion head is one class registered by decorator. Everything here lives in this test module.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench import TrainConfig, Trainer, build_model, load_dataset, train
from workbench.models.fusion import FusionHead, register_fusion, unregister_fusion
from workbench.strategies.base import (
    Strategy,
    available_strategies,
    register_strategy,
    unregister_strategy,
)


@pytest.fixture(scope="module")
def small():
    return load_dataset("synthetic-imbalance", n=300, seed=2)


# -- a strategy -----------------------------------------------------------------------------------
class FusedOnly(Strategy):
    """Fused cross-entropy only, scaled; counts its hook calls."""

    calls: dict[str, int] = {}

    def __init__(self, *, scale: float = 1.0):
        super().__init__(unimodal_weight=0.0)
        self.scale = scale

    def setup(self, ctx):
        FusedOnly.calls["setup"] = FusedOnly.calls.get("setup", 0) + 1

    def loss(self, ctx, batch, out):
        FusedOnly.calls["loss"] = FusedOnly.calls.get("loss", 0) + 1
        return self.scale * F.cross_entropy(out.logits.float(), batch.y)


@pytest.fixture
def mine():
    register_strategy("mine")(FusedOnly)
    FusedOnly.calls.clear()
    yield FusedOnly
    unregister_strategy("mine")


def test_a_strategy_defined_here_trains_through_train(small, mine):
    assert "mine" in available_strategies() and mine.name == "mine"
    run = train(small, strategy="mine", strategy_params={"scale": 0.5}, epochs=2, seed=0, progress=False,
                save=False)
    assert mine.calls["setup"] == 1 and mine.calls["loss"] >= 2
    assert run.config["train"]["strategy"] == "mine"
    assert run.config["train"]["strategy_params"] == {"scale": 0.5}
    assert list(run.history["epoch"]) == [1, 2]


def test_a_bad_strategy_class_is_refused_in_one_line():
    with pytest.raises(TypeError, match="must be a Strategy subclass"):
        register_strategy("nope")(object)


# -- an encoder -----------------------------------------------------------------------------------
class Declared(nn.Module):
    """Declares its width."""

    embed_dim = 6

    def __init__(self, d: int):
        super().__init__()
        self.proj = nn.Linear(d, 6)

    def forward(self, x):
        return torch.tanh(self.proj(x))


class Undeclared(nn.Module):
    """Width 5, found by a dry forward pass."""

    def __init__(self, d: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 12), nn.ReLU(), nn.Dropout(0.2), nn.Linear(12, 5))

    def forward(self, x):
        return self.net(x)


def test_build_model_takes_any_module_and_infers_its_width(small):
    weak = Undeclared(16)
    model = build_model(small.shapes, small.kinds, small.n_classes, fusion="concat", embed=8,
                        encoders={"weak": weak, "strong": Declared(16)})
    assert model.encoders["weak"] is weak and weak.training  # the dry forward restored train mode
    assert model.fusion_head.in_features == 6 + 5
    assert model.fusion_module.modality_columns("weak") == slice(6, 11)
    out = model({m: t[:4] for m, t in small.modalities.items()})
    assert out.logits.shape == (4, small.n_classes)
    assert out.embeddings["weak"].shape == (4, 5) and out.unimodal_logits["strong"].shape == (4, small.n_classes)


def test_the_trainer_trains_a_copy_of_a_module_it_is_given(small):
    weak = Undeclared(16)
    before = [p.detach().clone() for p in weak.parameters()]
    trainer = Trainer(TrainConfig(epochs=3, seed=0, progress=False), encoders={"weak": weak})
    trainer.fit(small, small.split(seed=0))
    trained = trainer.model_.encoders["weak"]
    assert isinstance(trained, Undeclared) and trained is not weak
    assert any(not torch.equal(p.cpu(), q) for p, q in zip(trained.parameters(), before, strict=True))
    assert all(torch.equal(p, q) for p, q in zip(weak.parameters(), before, strict=True))  # left as given
    assert trainer.history["train_loss"].notna().all()


def test_encoders_for_unknown_modalities_or_of_the_wrong_shape_are_refused(small):
    with pytest.raises(ValueError, match=r"unknown modalities \['audio'\]"):
        build_model(small.shapes, small.kinds, small.n_classes, encoders={"audio": Declared(16)})
    with pytest.raises(ValueError, match="Undeclared fails on input of shape"):
        build_model(small.shapes, small.kinds, small.n_classes, encoders={"weak": Undeclared(3)})
    with pytest.raises(ValueError, match="needs every modality's embedding to have one width"):
        build_model(small.shapes, small.kinds, small.n_classes, fusion="sum", encoders={"weak": Undeclared(16)})


# -- a fusion head --------------------------------------------------------------------------------
class MaxFusion(FusionHead):
    """``W max_m h_m + b`` over present modalities: a shared linear layer, as sum fusion's."""

    shared = True

    def __init__(self, modalities, widths, n_classes, hidden):
        super().__init__(modalities, widths, n_classes, hidden)
        self.fusion_head = nn.Linear(self._same_widths(), n_classes)

    def modality_columns(self, m):
        return slice(0, self.fusion_head.in_features)

    def forward(self, emb, uni, present):
        hs = torch.stack([emb[m] for m in self.modalities], 1)
        hs = hs.masked_fill(present.unsqueeze(2) == 0, float("-inf")).amax(1).nan_to_num(0.0, neginf=0.0)
        return self.fusion_head(hs)


@pytest.fixture
def max_fusion():
    register_fusion("max_pool")(MaxFusion)
    yield MaxFusion
    unregister_fusion("max_pool")


def test_a_fusion_head_defined_here_builds_and_trains(small, max_fusion):
    model = build_model(small.shapes, small.kinds, small.n_classes, fusion="max_pool", embed=8)
    x = {m: t[:5] for m, t in small.modalities.items()}
    mask = {"weak": torch.tensor([True, False, True, False, True])}
    out = model(x, mask)
    assert out.logits.shape == (5, small.n_classes)
    assert set(dict(model.named_parameters())) >= {"fusion_head.weight", "fusion_head.bias"}
    # the strategies that act on each modality's part of the fusion layer ask the head
    for strategy in ("naive", "ogm_ge", "mlb", "mcr"):
        trainer = Trainer(TrainConfig(fusion="max_pool", strategy=strategy, epochs=2, seed=0, progress=False))
        trainer.fit(small, small.split(seed=0))
        assert trainer.model_.fusion == "max_pool" and trainer.history["train_loss"].notna().all(), strategy


def test_a_bad_fusion_class_is_refused_in_one_line():
    with pytest.raises(TypeError, match="must be a FusionHead subclass"):
        register_fusion("nope")(nn.Linear)


def test_an_encoder_of_your_own_trains_through_train_and_reloads(small, tmp_path):
    from workbench import load_run, train
    from workbench.store.runs import RunError

    run = train(small, epochs=2, seed=0, runs_dir=tmp_path, progress=False, encoders={"weak": Undeclared(16)})
    assert run.config["encoders"] == {"weak": f"{Undeclared.__module__}:Undeclared"}
    plain = train(small, epochs=2, seed=0, runs_dir=tmp_path, progress=False)
    assert plain.run_id != run.run_id  # the encoder is part of the run's identity
    again = load_run(run.path)
    with pytest.raises(RunError, match="encoders of your own for \\['weak'\\]"):
        again.load_model()
    model = again.load_model(encoders={"weak": Undeclared(16)})
    trained = run.model.encoders["weak"].state_dict()
    assert all(torch.equal(v, model.encoders["weak"].state_dict()[k].cpu()) for k, v in
               {k: v.cpu() for k, v in trained.items()}.items())
