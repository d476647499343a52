"""Multimodal models: one encoder per modality, a fusion head, and a unimodal head per modality.

Every model exposes per-modality predictions (``ModelOutput.unimodal_logits``) because the
imbalance, Shapley and fairness analyses all need them.

Encoders
    ``vector``  : MLP ``d -> hidden -> embed`` (ReLU, dropout).
    ``sequence``: two 1-D convolutions over ``(channels, time)``, global average pooling.
    ``image``   : two 2-D convolutions with max pooling, global average pooling.

Fusion heads (``fusion=``)
    ``late``   : fused logits = mean of the unimodal heads' logits over present modalities.
    ``concat`` : linear layer over the concatenated embeddings.
    ``sum``    : linear layer over the sum of the embeddings.
    ``gated``  : softmax gate over modalities (scores from each embedding), linear layer over
                 the gated sum; absent modalities get zero gate.
    ``mlp``    : a non-linear joint layer: ``W_2 relu(W_1 [h_1; ...; h_M] + b_1) + b_2`` with
                 ``hidden`` units (``fusion_head`` is ``W_1``, whose column block ``m`` reads
                 modality m as in ``concat``; ``fusion_out`` is ``W_2``). The only head here whose
                 logits are not additive in the modalities' embeddings (late/concat/sum are;
                 gated is additive given the gate), so the only one that can represent an
                 interaction such as XOR between modalities (``synthetic-xor``: >= 0.85 of
                 Bayes 0.875, the others about 0.5-0.7). It is the "nonlinear" classifier of
                 the MCR/MLB authors' code (per-modality projections summed, ReLU, linear)
                 with one hidden layer and no dropout.

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

import math
from dataclasses import dataclass

import torch
from torch import nn

FUSIONS = ("late", "concat", "sum", "gated", "mlp")


@dataclass(frozen=True)
class ModalitySpec:
    """Kind (``vector``/``sequence``/``image``) and per-sample shape of one modality."""

    kind: str
    shape: tuple[int, ...]


@dataclass
class ModelOutput:
    """Fused logits, unimodal logits and embeddings of one forward pass."""

    logits: torch.Tensor
    unimodal_logits: dict[str, torch.Tensor]
    embeddings: dict[str, torch.Tensor]


class MLPEncoder(nn.Module):
    def __init__(self, in_dim: int, hidden: int, embed: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, embed), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Conv1dEncoder(nn.Module):
    def __init__(self, channels: int, hidden: int, embed: int, dropout: float):
        super().__init__()
        width = max(16, hidden // 4)
        self.net = nn.Sequential(
            nn.Conv1d(channels, width, 5, padding=2), nn.ReLU(),
            nn.Conv1d(width, width * 2, 5, padding=2, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(dropout),
            nn.Linear(width * 2, embed), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNNEncoder(nn.Module):
    def __init__(self, channels: int, hidden: int, embed: int, dropout: float):
        super().__init__()
        width = max(16, hidden // 4)
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
            nn.Linear(width * 2, embed), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_encoder(spec: ModalitySpec, *, hidden: int, embed: int, dropout: float) -> nn.Module:
    """The default encoder for a modality kind."""
    if spec.kind == "vector":
        return MLPEncoder(math.prod(spec.shape), hidden, embed, dropout)
    if spec.kind == "sequence":
        return Conv1dEncoder(spec.shape[0], hidden, embed, dropout)
    if spec.kind == "image":
        return SmallCNNEncoder(spec.shape[0], hidden, embed, dropout)
    raise ValueError(f"unknown modality kind {spec.kind!r}; expected vector, sequence or image")


class MultimodalModel(nn.Module):
    """Per-modality encoders, a fusion head and one unimodal head per modality.

    Parameters
    ----------
    specs : dict of str to ModalitySpec
        Modality names in a fixed order, with kind and per-sample shape.
    n_classes : int
    fusion : {"late", "concat", "sum", "gated", "mlp"}
    hidden, embed : int
        Encoder hidden width (also the width of the ``mlp`` fusion's joint layer) and embedding
        size (default 128 and 64).
    dropout : float
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
    ):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")
        self.modalities = list(specs)
        self.specs = dict(specs)
        self.fusion = fusion
        self.n_classes = n_classes
        self.encoders = nn.ModuleDict(
            {m: make_encoder(s, hidden=hidden, embed=embed, dropout=dropout) for m, s in specs.items()}
        )
        self.unimodal_heads = nn.ModuleDict({m: nn.Linear(embed, n_classes) for m in specs})
        m_count = len(specs)
        if fusion == "concat":
            self.fusion_head = nn.Linear(embed * m_count, n_classes)
        elif fusion == "mlp":
            self.fusion_head = nn.Linear(embed * m_count, hidden)
            self.fusion_out = nn.Linear(hidden, n_classes)
        elif fusion in ("sum", "gated"):
            self.fusion_head = nn.Linear(embed, n_classes)
        if fusion == "gated":
            self.gate = nn.Linear(embed, 1, bias=False)  # a shared bias cancels in the softmax
        for m, s in specs.items():
            self.register_buffer(f"mean_{m}", torch.zeros(s.shape))
            self.register_buffer(f"std_{m}", torch.ones(s.shape))

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
        present = self._presence(emb, mask)
        if self.fusion == "late":
            stacked = torch.stack([unimodal[m] for m in self.modalities], 1)  # (n, M, C)
            w = present.unsqueeze(2)
            return (stacked * w).sum(1) / w.sum(1).clamp_min(1.0)
        if self.fusion == "concat":
            return self.fusion_head(torch.cat([emb[m] for m in self.modalities], 1))
        if self.fusion == "mlp":
            return self.fusion_out(torch.relu(self.fusion_head(torch.cat([emb[m] for m in self.modalities], 1))))
        hs = torch.stack([emb[m] for m in self.modalities], 1)  # (n, M, E)
        if self.fusion == "sum":
            return self.fusion_head(hs.sum(1))
        scores = self.gate(hs).squeeze(2).masked_fill(present == 0, float("-inf"))
        gate = torch.softmax(scores, 1).nan_to_num(0.0)  # all-absent rows -> zero gate
        return self.fusion_head((gate.unsqueeze(2) * hs).sum(1))

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
        detach = detach_unimodal and self.fusion != "late"
        uni = {m: self.unimodal_heads[m](emb[m].detach() if detach else emb[m]) for m in self.modalities}
        return ModelOutput(self.fuse(emb, uni, mask), uni, emb)


def build_model(shapes: dict[str, tuple[int, ...]], kinds: dict[str, str], n_classes: int, **kwargs) -> MultimodalModel:
    """A :class:`MultimodalModel` for modalities with the given shapes and kinds."""
    specs = {m: ModalitySpec(kinds[m], tuple(shapes[m])) for m in shapes}
    return MultimodalModel(specs, n_classes, **kwargs)
