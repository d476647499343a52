import pytest
import torch

from workbench.models.multimodal import FUSIONS, ModalitySpec, MultimodalModel


def specs():
    return {"v": ModalitySpec("vector", (5,)), "s": ModalitySpec("sequence", (2, 12)), "i": ModalitySpec("image", (1, 8, 8))}


def batch(n=4):
    return {"v": torch.randn(n, 5), "s": torch.randn(n, 2, 12), "i": torch.randn(n, 1, 8, 8)}


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_gives_fused_and_unimodal_logits(fusion):
    model = MultimodalModel(specs(), 3, fusion=fusion)
    out = model(batch())
    assert out.logits.shape == (4, 3)
    assert {m: z.shape for m, z in out.unimodal_logits.items()} == {m: (4, 3) for m in "vsi"}


def test_late_fusion_is_the_mean_of_unimodal_logits():
    model = MultimodalModel(specs(), 3, fusion="late").eval()
    out = model(batch())
    assert torch.allclose(out.logits, torch.stack(list(out.unimodal_logits.values())).mean(0), atol=1e-6)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_absent_modality_has_no_influence(fusion):
    torch.manual_seed(0)
    model = MultimodalModel(specs(), 3, fusion=fusion).eval()
    b1, b2 = batch(), batch()
    b2["v"], b2["s"] = b1["v"], b1["s"]  # only the image differs
    mask = {"i": torch.zeros(4, dtype=torch.bool)}
    assert torch.allclose(model(b1, mask).logits, model(b2, mask).logits, atol=1e-6)
    assert not torch.allclose(model(b1).logits, model(b2).logits, atol=1e-6)


def test_detached_probes_do_not_reach_encoders():
    model = MultimodalModel(specs(), 3, fusion="concat")
    out = model(batch(), detach_unimodal=True)
    sum(z.sum() for z in out.unimodal_logits.values()).backward()
    assert all(p.grad is None for p in model.encoders.parameters())
    assert all(p.grad is not None for p in model.unimodal_heads.parameters())


def test_standardization_uses_training_statistics():
    model = MultimodalModel({"v": ModalitySpec("vector", (3,))}, 2)
    x = torch.randn(500, 3) * 7 + 4
    model.set_standardization({"v": x})
    z = model.standardize("v", x)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=1e-4) and torch.allclose(z.std(0), torch.ones(3), atol=1e-3)


def test_mlp_fusion_learns_xor_that_additive_heads_cannot():  # issue 14 item 14
    from workbench import train

    ds_kw = {"n": 3000}
    kw = dict(epochs=20, weight_decay=1e-2, save=False, progress=False)
    mlp = [train("synthetic-xor", fusion="mlp", seed=s, dataset_params={**ds_kw, "seed": s}, **kw) for s in (0,)]
    bayes = mlp[0].dataset.ground_truth["bayes_accuracy"]
    assert bayes == pytest.approx(0.875, abs=1e-3)
    assert all(r.metrics["test"]["fused"] >= 0.85 for r in mlp)
    concat = train("synthetic-xor", fusion="concat", seed=0, dataset_params={**ds_kw, "seed": 0}, **kw)
    assert concat.metrics["test"]["fused"] < 0.6  # logits additive in the modalities: chance


def test_mlp_fusion_matches_the_batched_coalition_path():
    from workbench.training.stacked import _fuse

    torch.manual_seed(0)
    model = MultimodalModel(specs(), 3, fusion="mlp").eval()
    emb = model.encode(batch())
    params = dict(model.named_parameters())
    torch.testing.assert_close(_fuse(model, params, emb, {}, None), model.fuse(emb, {}, None))
