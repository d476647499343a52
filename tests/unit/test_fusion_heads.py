"""The fusion heads' declarations agree with what they compute."""

import pytest
import torch

from workbench.models.fusion import FUSIONS
from workbench.models.multimodal import ModalitySpec, MultimodalModel

SPECS = {"a": ModalitySpec("vector", (5,)), "b": ModalitySpec("vector", (3,)), "c": ModalitySpec("vector", (4,))}


def model_and_output(fusion: str):
    torch.manual_seed(0)
    model = MultimodalModel(SPECS, 3, fusion=fusion, hidden=16, embed=8, dropout=0.0).eval()
    x = {m: torch.randn(6, *s.shape) for m, s in SPECS.items()}
    return model, model(x)


@pytest.mark.parametrize("fusion", ["concat", "mlp"])
def test_concatenating_heads_own_disjoint_column_blocks_that_cover_the_layer(fusion):
    model, _ = model_and_output(fusion)
    blocks = [model.fusion_module.modality_columns(m) for m in model.modalities]
    assert [(s.start, s.stop) for s in blocks] == [(0, 8), (8, 16), (16, 24)]
    assert model.fusion_module.joint is model.fusion_head and not model.fusion_module.shared


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_per_modality_logits_add_up_to_the_fused_logits_of_an_additive_head(fusion):
    model, out = model_and_output(fusion)
    parts = model.fusion_module.modality_logits(out.embeddings, out.unimodal_logits)
    assert torch.allclose(sum(parts.values()), out.logits, atol=1e-5)


@pytest.mark.parametrize("fusion", list(FUSIONS))
def test_routing_with_every_contribution_kept_is_the_forward_pass(fusion):
    model, out = model_and_output(fusion)
    head = model.fusion_module
    present = torch.ones(6, 3)
    routed = head.routed(out.embeddings, out.unimodal_logits, lambda m, t: t, present)
    assert torch.allclose(routed, out.logits, atol=1e-5)


def test_the_heads_layers_keep_flat_state_dict_keys():
    keys = {f: {k for k in MultimodalModel(SPECS, 3, fusion=f).state_dict() if not k.startswith(("encoders.",
                "unimodal_heads.", "mean_", "std_"))} for f in FUSIONS}
    assert keys == {"late": set(), "concat": {"fusion_head.weight", "fusion_head.bias"},
                    "sum": {"fusion_head.weight", "fusion_head.bias"},
                    "gated": {"fusion_head.weight", "fusion_head.bias", "gate.weight"},
                    "mlp": {"fusion_head.weight", "fusion_head.bias", "fusion_out.weight", "fusion_out.bias"}}


def test_the_mlp_head_has_no_per_modality_logits():
    model, out = model_and_output("mlp")
    with pytest.raises(ValueError, match="fusion 'mlp' has no per-modality logits"):
        model.fusion_module.modality_logits(out.embeddings, out.unimodal_logits)
