"""CoRe-Sleep: coordinated-representation fusion of sequence modalities (EEG, EOG, ...).

Kontras et al., "CoRe-Sleep: A Multimodal Fusion Framework for Time Series Robust to Imperfect
Modalities", arXiv 2304.06485 (IEEE TNSRE 2024); authors' code github.com/kkontras/CoRe-Sleep,
``models/CoRe_model.py``. Method note: ``shared/methods/coresleep.md``.

Input per modality ``m``: ``(batch, L, F, B)`` time-frequency images -- ``L`` epochs of a sequence
(21 in the paper), ``F`` STFT frames per epoch (29) and ``B`` frequency bins (128).

Per modality (SleepTransformer style)
    *inner* transformer over the ``F`` frames of each epoch plus a learned CLS token; the CLS
    output is the epoch's representation. *Outer* transformer over the ``L`` epoch
    representations of the sequence. A linear head per modality -> class logits per epoch.
Multimodal branch (weights shared with the unimodal encoders)
    The same inner and outer layers are run again for each modality, but every layer's attention
    also attends to the other present modalities' features of the same layer from their unimodal
    pass: the keys and values are ``[own tokens; partner tokens]`` and the queries are the own
    tokens (inner level: the partner's frames of the same epoch; outer level: the partner's epoch
    sequence). No new attention weights are introduced, which is how "cross-attention sharing
    weights with the unimodal encoders" is realised here [I: the authors' exact cross-attention
    layout is in their code; ours generalises it to M >= 2 modalities]. The combined head reads
    the *sum* of the multimodal streams (as the authors' "sum of the two cross streams").
Missing modalities (mask ``modality -> bool[batch]`` or ``bool[batch, L]`` per epoch)
    An absent modality is *excluded*, never zero-filled: its tokens are removed from every
    partner's keys by the attention's key-padding mask, its stream is left out of the combined
    sum, and its outer self-attention ignores its absent epochs. A modality missing from the input
    dict is absent everywhere. :attr:`CoReOutput.present` says which heads produced an output where
    (the task's loss uses it: a unimodal head only where its modality is present, the combined
    head only where at least two are, the alignment only where both of a pair are).
Alignment loss (:func:`alignment_loss`)
    L2-normalised inner CLS tokens of two modalities; per sequence the ``L x L`` cosine matrix
    ``S``; ``CE(S / tau, I) + CE(S^T / tau, I)`` over the epochs where both are present, the
    other epochs of the same sequence being the negatives. The authors' code has no temperature
    (``tau = 1``, the default): the bounded logits give a floor of ``2 log(1 + (L-1)/e)`` for
    identical orthonormal features (2.12 at L = 21). With M > 2 the pairs' losses are averaged.

Deviations, stated: learned absolute position embeddings (inner and outer) instead of the
authors' relative positions; pre-norm layers (``norm_first``); a linear frame projection only
when ``d_model`` differs from the number of bins (at the paper's 128 bins and ``d_model=128``
the frames enter as they are).

Example
-------
>>> import torch
>>> model = CoReSleepModel(["eeg", "eog"], n_bins=16, n_frames=5, seq_len=3, n_classes=5, d_model=16,
...                        heads=2, inner_layers=1, outer_layers=1, ff=32, dropout=0.0).eval()
>>> x = {"eeg": torch.randn(2, 3, 5, 16), "eog": torch.randn(2, 3, 5, 16)}
>>> out = model(x)
>>> out.logits.shape, sorted(out.unimodal_logits), out.epoch_embeddings["eeg"].shape
(torch.Size([2, 3, 5]), ['eeg', 'eog'], torch.Size([2, 3, 16]))
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CoReLayer", "CoReOutput", "CoReSleepModel", "alignment_loss", "pairwise_alignment"]


@dataclass
class CoReOutput:
    """Per-epoch outputs of one forward pass, all ``(batch, L, ...)``.

    ``logits`` are the combined head's (valid where ``present["combined"]``), ``unimodal_logits``
    each modality's head (valid where ``present[m]``), ``epoch_embeddings`` the inner CLS tokens
    the alignment loss reads; ``present`` maps ``m`` and ``"combined"`` to ``bool[batch, L]``.
    """

    logits: torch.Tensor
    unimodal_logits: dict[str, torch.Tensor]
    epoch_embeddings: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]


class CoReLayer(nn.Module):
    """A pre-norm transformer layer whose attention can also read partner tokens (shared weights)."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, pad: torch.Tensor | None = None, context: torch.Tensor | None = None,
                context_pad: torch.Tensor | None = None) -> torch.Tensor:
        """``h`` ``(n, T, d)``; ``pad`` ``bool[n, T]`` (True = ignore as a key); ``context`` the
        partners' tokens ``(n, S, d)`` with ``context_pad`` ``bool[n, S]``."""
        q = self.norm1(h)
        kv, keypad = q, pad
        if context is not None:
            kv = torch.cat([q, self.norm1(context)], 1)
            own = pad if pad is not None else torch.zeros(h.shape[:2], dtype=torch.bool, device=h.device)
            keypad = torch.cat([own, context_pad], 1)
        if keypad is not None:
            # a row with every key ignored would give NaN; such rows are never read (their outputs
            # are masked out by ``present``), so let them attend to everything instead
            keypad = keypad & ~keypad.all(1, keepdim=True)
        a = self.attn(q, kv, kv, key_padding_mask=keypad, need_weights=False)[0]
        h = h + self.drop(a)
        return h + self.drop(self.ff(self.norm2(h)))


class _Encoder(nn.Module):
    """Inner (frames of an epoch + CLS) and outer (epochs of a sequence) stacks of one modality."""

    def __init__(self, n_bins: int, n_frames: int, seq_len: int, d_model: int, heads: int, inner_layers: int,
                 outer_layers: int, ff: int, dropout: float):
        super().__init__()
        self.proj = nn.Identity() if n_bins == d_model else nn.Linear(n_bins, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.inner_pos = nn.Parameter(torch.randn(1, n_frames + 1, d_model) * 0.02)
        self.outer_pos = nn.Parameter(torch.randn(1, seq_len, d_model) * 0.02)
        self.inner = nn.ModuleList(CoReLayer(d_model, heads, ff, dropout) for _ in range(inner_layers))
        self.outer = nn.ModuleList(CoReLayer(d_model, heads, ff, dropout) for _ in range(outer_layers))
        self.inner_norm, self.outer_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, L, F, B)`` -> inner input tokens ``(n * L, F + 1, d)``."""
        n, L, Fr, _ = x.shape
        h = self.proj(x.reshape(n * L, Fr, -1))
        return torch.cat([self.cls.expand(n * L, -1, -1), h], 1) + self.inner_pos


class CoReSleepModel(nn.Module):
    """CoRe-Sleep for ``M >= 2`` time-frequency sequence modalities (see the module docstring).

    Parameters
    ----------
    modalities : list of str
    n_bins, n_frames, seq_len : int
        Input layout ``(L, F, B)`` per modality (paper: 21, 29, 128).
    n_classes : int
    d_model, heads, inner_layers, outer_layers, ff, dropout : keyword-only
        Transformer sizes; defaults are the paper's (128, 8, 4, 4, 1024, 0.3).
    """

    def __init__(self, modalities: list[str], *, n_bins: int = 128, n_frames: int = 29, seq_len: int = 21,
                 n_classes: int = 5, d_model: int = 128, heads: int = 8, inner_layers: int = 4,
                 outer_layers: int = 4, ff: int = 1024, dropout: float = 0.3):
        super().__init__()
        if len(modalities) < 2:
            raise ValueError(f"modalities: CoRe-Sleep needs >= 2 modalities, got {list(modalities)}")
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.modalities = list(modalities)
        self.n_bins, self.n_frames, self.seq_len, self.n_classes = n_bins, n_frames, seq_len, n_classes
        self.encoders = nn.ModuleDict({m: _Encoder(n_bins, n_frames, seq_len, d_model, heads, inner_layers,
                                                   outer_layers, ff, dropout) for m in self.modalities})
        self.unimodal_heads = nn.ModuleDict({m: nn.Linear(d_model, n_classes) for m in self.modalities})
        self.combined_head = nn.Linear(d_model, n_classes)
        for m in self.modalities:  # per-bin input standardisation (training-set statistics)
            self.register_buffer(f"mean_{m}", torch.zeros(n_bins))
            self.register_buffer(f"std_{m}", torch.ones(n_bins))

    def set_standardization(self, modalities: dict[str, torch.Tensor]) -> None:
        """Per-frequency-bin mean/std of the training inputs (the trainer calls this before training).

        The trainer passes every training input, present or not (it has no mask here): data
        under a False mask should be real or left out, not zero-filled, or it biases the mean.
        """
        for m in self.modalities:
            x = modalities[m].float().reshape(-1, self.n_bins)
            getattr(self, f"mean_{m}").copy_(x.mean(0))
            getattr(self, f"std_{m}").copy_(x.std(0).clamp_min(1e-6))

    def _presence(self, x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        ref = next(x[m] for m in self.modalities if m in x)
        n, L, device = ref.shape[0], ref.shape[1], ref.device
        out = {}
        for m in self.modalities:
            if m not in x:
                out[m] = torch.zeros(n, L, dtype=torch.bool, device=device)
                continue
            v = mask.get(m) if mask is not None else None
            v = torch.ones(n, L, dtype=torch.bool, device=device) if v is None else v.to(device).bool()
            out[m] = v.unsqueeze(1).expand(n, L) if v.dim() == 1 else v
        return out

    def forward(self, x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None = None, *,
                multimodal: bool = True) -> CoReOutput:
        """Per-epoch logits of every head. ``x[m]`` is ``(n, L, F, B)``; a modality not in ``x`` is
        absent; ``multimodal=False`` skips the multimodal branch (its logits are then zeros)."""
        given = [m for m in self.modalities if m in x]
        if not given:
            raise ValueError(f"x: none of the model's modalities {self.modalities} is given")
        present = self._presence(x, mask)
        ref = x[given[0]]
        n, L = ref.shape[:2]
        inner_h: dict[str, list[torch.Tensor]] = {}
        outer_h: dict[str, list[torch.Tensor]] = {}
        uni, emb, epoch_rep = {}, {}, {}
        for m in given:  # unimodal pass, keeping every layer's input for the partners' attention
            enc = self.encoders[m]
            xm = (x[m].float() - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}")
            h = enc.tokens(xm)
            inner_h[m] = []
            for layer in enc.inner:
                inner_h[m].append(h)
                h = layer(h)
            cls = enc.inner_norm(h[:, 0]).reshape(n, L, -1)
            emb[m] = cls
            g = cls + enc.outer_pos[:, :L]
            outer_h[m] = []
            pad = ~present[m]
            for layer in enc.outer:
                outer_h[m].append(g)
                g = layer(g, pad)
            epoch_rep[m] = enc.outer_norm(g)
            uni[m] = self.unimodal_heads[m](epoch_rep[m])
        for m in self.modalities:
            if m not in uni:  # absent everywhere: its head produces nothing (zeros, never read)
                uni[m] = ref.new_zeros(n, L, self.n_classes)
                emb[m] = None
        n_present = torch.stack([present[m] for m in self.modalities]).sum(0)
        present_out = dict(present)
        present_out["combined"] = n_present >= 2
        if not multimodal or len(given) < 2:
            logits = ref.new_zeros(n, L, self.n_classes)
        else:
            logits = self._multimodal(given, inner_h, outer_h, present, n, L)
        return CoReOutput(logits, uni, {m: e for m, e in emb.items() if e is not None}, present_out)

    def _multimodal(self, given, inner_h, outer_h, present, n, L) -> torch.Tensor:
        total = 0
        for m in given:
            enc = self.encoders[m]
            partners = [p for p in given if p != m]
            # inner level: epoch j of m attends to the frames of epoch j of every present partner
            ctx_pad = torch.cat([(~present[p]).reshape(n * L, 1).expand(-1, inner_h[p][0].shape[1])
                                 for p in partners], 1)
            h = inner_h[m][0]
            for k, layer in enumerate(enc.inner):
                h = layer(h, None, torch.cat([inner_h[p][k] for p in partners], 1), ctx_pad)
            g = enc.inner_norm(h[:, 0]).reshape(n, L, -1) + enc.outer_pos[:, :L]
            outer_pad = torch.cat([~present[p] for p in partners], 1)
            for k, layer in enumerate(enc.outer):
                g = layer(g, ~present[m], torch.cat([outer_h[p][k] for p in partners], 1), outer_pad)
            total = total + enc.outer_norm(g) * present[m].unsqueeze(-1).to(g.dtype)
        return self.combined_head(total)


def alignment_loss(a: torch.Tensor, b: torch.Tensor, both: torch.Tensor | None = None, *,
                   tau: float = 1.0) -> torch.Tensor:
    """CoRe's coordinated-representation loss between two modalities' epoch embeddings.

    Parameters
    ----------
    a, b : Tensor ``(n, L, d)``
        Epoch embeddings (inner CLS tokens); L2-normalised here.
    both : bool Tensor ``(n, L)``, optional
        Epochs where both modalities are present; only they are anchors or negatives.
    tau : float, keyword-only
        Temperature (1 = the authors' code, which has none).

    Returns
    -------
    Tensor
        ``CE(S / tau, I) + CE(S^T / tau, I)``, averaged over the anchors of every sequence.

    Examples
    --------
    >>> import math, torch
    >>> z = torch.eye(21).unsqueeze(0)  # identical orthonormal features, L = 21
    >>> round(float(alignment_loss(z, z)), 4) == round(2 * math.log(1 + 20 / math.e), 4)
    True
    """
    if tau <= 0 or not math.isfinite(tau):
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    s = a @ b.transpose(1, 2) / tau  # (n, L, L)
    n, L = s.shape[:2]
    target = torch.arange(L, device=s.device).expand(n, L)
    if both is None:
        both = torch.ones(n, L, dtype=torch.bool, device=s.device)
    keep = both.unsqueeze(1) & both.unsqueeze(2)  # an absent epoch is neither anchor nor negative
    s = s.masked_fill(~keep, torch.finfo(s.dtype).min)
    w = both.to(s.dtype)
    ce_ab = F.cross_entropy(s.reshape(n * L, L), target.reshape(-1), reduction="none").reshape(n, L)
    ce_ba = F.cross_entropy(s.transpose(1, 2).reshape(n * L, L), target.reshape(-1), reduction="none").reshape(n, L)
    return ((ce_ab + ce_ba) * w).sum() / w.sum().clamp_min(1.0)


def pairwise_alignment(emb: dict[str, torch.Tensor], present: dict[str, torch.Tensor], *,
                       tau: float = 1.0) -> torch.Tensor:
    """Mean of :func:`alignment_loss` over every pair of modalities that has embeddings."""
    names = list(emb)
    terms = [alignment_loss(emb[i], emb[j], present[i] & present[j], tau=tau)
             for i, j in itertools.combinations(names, 2)]
    if not terms:
        ref = next(iter(present.values()))
        return torch.zeros((), device=ref.device)
    return torch.stack(terms).mean()
