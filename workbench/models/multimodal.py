"""Multimodal models: one encoder per modality, a fusion head, and a unimodal head per modality.

Every model exposes per-modality predictions (``ModelOutput.unimodal_logits``) because the
imbalance, Shapley and fairness analyses all need them.

Encoders
    By modality kind from the registry of :mod:`workbench.models.encoders` (``vector`` MLP,
    ``sequence`` Conv1d, ``image`` small CNN), or any ``nn.Module`` passed for a modality
    (``encoders={"audio": module}``; its width is its ``embed_dim`` or found by a dry forward).

Fusion heads (``fusion=``), one module each under :mod:`workbench.models.fusion`
    ``late``   : fused logits = mean of the unimodal heads' logits over present modalities.
    ``concat`` : linear layer over the concatenated embeddings.
    ``sum``    : linear layer over the sum of the embeddings.
    ``gated``  : softmax gate over modalities (scores from each embedding), linear layer over
                 the gated sum; absent modalities get zero gate.
    ``mlp``    : a non-linear joint layer over the concatenated embeddings (see
                 :mod:`workbench.models.fusion.mlp`).
    A new head is one module registered with ``@register_fusion("name")``.

Missing modalities
    A modality that is absent for a sample (presence mask False) has its embedding replaced
    by zeros, is left out of the late average and gets zero gate. Inputs are standardised
    with training-set statistics stored as buffers, so a zero *input* equals the training
    mean; the embedding is zeroed as well so that "absent" is exact, not approximate. The
    Shapley analysis uses the same masking for its one-model value function.

Example
-------
>>> import torch
>>> from workbench.models.multimodal import MultimodalModel, ModalitySpec
>>> model = MultimodalModel({"a": ModalitySpec("vector", (5,)), "b": ModalitySpec("vector", (3,))},
...                         n_classes=2, fusion="concat")
>>> out = model({"a": torch.randn(4, 5), "b": torch.randn(4, 3)})
>>> out.logits.shape, sorted(out.unimodal_logits)
(torch.Size([4, 2]), ['a', 'b'])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from workbench.models.encoders import ModalitySpec, encoder_width, make_encoder
from workbench.models.fusion import FUSIONS, FusionHead, make_fusion

__all__ = ["FUSIONS", "ModalitySpec", "ModelOutput", "MultimodalModel", "build_model"]


@dataclass
class ModelOutput:
    """Fused logits, unimodal logits and embeddings of one forward pass."""

    logits: torch.Tensor
    unimodal_logits: dict[str, torch.Tensor]
    embeddings: dict[str, torch.Tensor]


class MultimodalModel(nn.Module):
    """Per-modality encoders, a fusion head and one unimodal head per modality.

    Parameters
    ----------
    specs : dict of str to ModalitySpec
        Modality names in a fixed order, with kind and per-sample shape.
    n_classes : int
    fusion : str
        A registered fusion head (built in: ``late``, ``concat``, ``sum``, ``gated``, ``mlp``).
    hidden, embed : int
        Encoder hidden width (also the width of the ``mlp`` fusion's joint layer) and embedding
        size (default 128 and 64) of the default encoders.
    dropout : float
    encoders : dict of str to nn.Module, optional
        Encoders brought by the user for some modalities (the others get the default of their
        kind). Each maps ``(n, *shape)`` standardised inputs to ``(n, width)`` embeddings; the
        width is its ``embed_dim`` attribute or read from a dry forward pass.

    Notes
    -----
    The fusion head is :attr:`fusion_module` (a :class:`~workbench.models.fusion.FusionHead`);
    its layers are registered on the model under their own names (``fusion_head``,
    ``fusion_out``, ``gate``), so state-dict keys and parameter order are those of a model
    whose fusion layers were its own attributes.
    """

    def __init__(
        self,
        specs: dict[str, ModalitySpec],
        n_classes: int,
        *,
        fusion: str = "concat",
        hidden: int = 128,
        embed: int = 64,
        dropout: float = 0.1,
        encoders: dict[str, nn.Module] | None = None,
    ):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")
        given = dict(encoders or {})
        unknown = sorted(set(given) - set(specs))
        if unknown:
            raise ValueError(f"encoders given for unknown modalities {unknown}; the modalities are {list(specs)}")
        for m, module in given.items():
            if not isinstance(module, nn.Module):
                raise TypeError(f"encoder for modality {m!r} must be a torch.nn.Module, got {type(module).__name__}")
        self.modalities = list(specs)
        self.specs = dict(specs)
        self.fusion = fusion
        self.n_classes = n_classes
        self.encoders = nn.ModuleDict(
            {m: given[m] if m in given else make_encoder(s, hidden=hidden, embed=embed, dropout=dropout)
             for m, s in specs.items()}
        )
        widths = {m: encoder_width(self.encoders[m], s) for m, s in specs.items()}
        self.unimodal_heads = nn.ModuleDict({m: nn.Linear(widths[m], n_classes) for m in specs})
        head = make_fusion(fusion, self.modalities, widths, n_classes=n_classes, hidden=hidden)
        object.__setattr__(self, "fusion_module", head)  # not a submodule: its layers are registered below
        for name, layer in head.named_children():
            if name in self._modules:
                raise ValueError(f"fusion {fusion!r}: layer name {name!r} clashes with the model's own {name!r}")
            self.add_module(name, layer)
        for m, s in specs.items():
            self.register_buffer(f"mean_{m}", torch.zeros(s.shape))
            self.register_buffer(f"std_{m}", torch.ones(s.shape))

    fusion_module: FusionHead

    def train(self, mode: bool = True) -> MultimodalModel:
        """As ``nn.Module.train``; also sets the fusion head's own ``training`` flag."""
        super().train(mode)
        self.fusion_module.training = mode
        return self

    # -- input standardisation -----------------------------------------------------
    def set_standardization(self, modalities: dict[str, torch.Tensor]) -> None:
        """Store per-feature mean/std of the training inputs (used in :meth:`forward`)."""
        for m in self.modalities:
            x = modalities[m].float()
            reduce_dims = [0] + ([] if self.specs[m].kind == "vector" else list(range(2, x.dim())))
            mean = x.mean(dim=reduce_dims, keepdim=True)[0]
            std = x.std(dim=reduce_dims, keepdim=True)[0].clamp_min(1e-6)
            getattr(self, f"mean_{m}").copy_(mean.expand(self.specs[m].shape))
            getattr(self, f"std_{m}").copy_(std.expand(self.specs[m].shape))

    def standardize(self, m: str, x: torch.Tensor) -> torch.Tensor:
        return (x - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}")

    def encoder_parameters(self, m: str) -> list[nn.Parameter]:
        """Parameters of modality ``m``'s encoder (what balancing methods modulate)."""
        return list(self.encoders[m].parameters())

    # -- forward --------------------------------------------------------------------
    def encode(self, batch: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None = None):
        """Embeddings per modality, zeroed where the modality is absent."""
        emb = {}
        for m in self.modalities:
            h = self.encoders[m](self.standardize(m, batch[m]))
            if mask is not None and m in mask:
                h = h * mask[m].to(h.dtype).unsqueeze(1)
            emb[m] = h
        return emb

    def fuse(self, emb: dict[str, torch.Tensor], unimodal: dict[str, torch.Tensor],
             mask: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Fused logits from embeddings (and unimodal logits for late fusion)."""
        return self.fusion_module(emb, unimodal, self._presence(emb, mask))

    def _presence(self, emb, mask) -> torch.Tensor:
        n = next(iter(emb.values())).shape[0]
        ref = next(iter(emb.values()))
        cols = [
            mask[m].to(ref.dtype) if mask is not None and m in mask else torch.ones(n, device=ref.device, dtype=ref.dtype)
            for m in self.modalities
        ]
        return torch.stack(cols, 1)

    def forward(
        self, batch: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None = None,
        *, detach_unimodal: bool = False,
    ) -> ModelOutput:
        """Fused and unimodal logits for a batch.

        ``detach_unimodal=True`` trains the unimodal heads as probes on detached
        embeddings, so their loss does not shape the encoders (naive joint training).
        Late fusion never detaches: its unimodal heads *are* the fused prediction.
        """
        emb = self.encode(batch, mask)
        detach = detach_unimodal and not self.fusion_module.uses_unimodal
        uni = {m: self.unimodal_heads[m](emb[m].detach() if detach else emb[m]) for m in self.modalities}
        return ModelOutput(self.fuse(emb, uni, mask), uni, emb)


def build_model(shapes: dict[str, tuple[int, ...]], kinds: dict[str, str], n_classes: int, **kwargs) -> MultimodalModel:
    """A :class:`MultimodalModel` for modalities with the given shapes and kinds.

    Keyword arguments go to :class:`MultimodalModel` (``fusion``, ``hidden``, ``embed``,
    ``dropout``, ``encoders``).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> mine = nn.Sequential(nn.Linear(3, 6), nn.Tanh())  # width 6 found by a dry forward
    >>> model = build_model({"a": (5,), "b": (3,)}, {"a": "vector", "b": "vector"}, 2, embed=4,
    ...                     encoders={"b": mine})
    >>> model.fusion_module.modality_columns("b")
    slice(4, 10, None)
    """
    specs = {m: ModalitySpec(kinds[m], tuple(shapes[m])) for m in shapes}
    return MultimodalModel(specs, n_classes, **kwargs)
