"""Training steps: the eager step and the CUDA-graph fast path.

Small multimodal models are launch-bound on a GPU: the device idles between hundreds of tiny
kernels. The fast path captures one *whole* training step -- batch gather from the resident
tensors, forward, the strategy's loss, backward, the strategy's gradient hook and the Adam
step (``capturable=True``) -- in one ``torch.cuda.CUDAGraph`` with static buffers, then
replays it for every full batch: per step the host only copies the batch's indices into a
static buffer and launches one graph.

Procedure (PyTorch's whole-network capture recipe): the first ``warmup`` steps run eagerly on
a side stream (they are real training steps, so the step count is unchanged), the next full
batch is captured and replayed; a last, smaller batch runs eagerly with the gradients zeroed
in place (the graph owns the gradient tensors). Explicit capture was chosen over
``torch.compile(mode="reduce-overhead")``: measured on an H100 (see ENVIRONMENT.md) it reached
~83k samples/s against ~29k for compile, with no compilation wait.

Which step runs is decided by :func:`choose_step_mode`: the graph when the device is CUDA,
``TrainConfig.fast_path`` is not False and the strategy is ``graph_safe`` (no host-side
decisions inside a step); otherwise eager, with the reason recorded in the run's config.
Per-epoch work (``on_epoch_start``/``on_epoch_end``: GMM refits, coefficient updates) stays
outside the graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from workbench.strategies.base import Batch, Strategy, TrainContext


def choose_step_mode(device: torch.device, strategy: Strategy, fast_path: bool | str) -> tuple[str, str]:
    """``("graph" | "eager", reason)`` for a device, a strategy and the config's ``fast_path``."""
    if fast_path is False or fast_path == "off":
        return "eager", "fast path turned off"
    if device.type != "cuda":
        return "eager", f"no CUDA graph on {device.type}"
    if not strategy.graph_safe:
        return "eager", f"strategy {strategy.name!r} is not graph-safe (host-side decisions inside a step)"
    return "graph", "whole step captured in a CUDA graph"


class EagerStep:
    """One ordinary training step per call; returns ``(loss, the task's batch statistic)``."""

    def __init__(self, ctx: TrainContext, strategy: Strategy, make_batch: Callable[[torch.Tensor], Batch],
                 autocast: Callable):
        self.ctx, self.strategy, self.make_batch, self.autocast = ctx, strategy, make_batch, autocast

    def run(self, bi: torch.Tensor, *, zero_in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        ctx, strategy = self.ctx, self.strategy
        batch = self.make_batch(bi)
        with self.autocast():
            out = ctx.task.forward(ctx.model, batch.x, batch.mask, detach_unimodal=strategy.detach_unimodal)
        loss = strategy.loss(ctx, batch, out)
        if zero_in_place:  # keep the graph's gradient tensors alive
            for p in ctx.model.parameters():
                if p.grad is not None:
                    p.grad.zero_()
        else:
            ctx.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        strategy.after_backward(ctx, batch, out)
        ctx.optimizer.step()
        return loss.detach(), ctx.task.batch_statistic(out, batch.y).detach()

    __call__ = run


class GraphStep(EagerStep):
    """The whole step captured once in a CUDA graph and replayed for every full batch."""

    def __init__(self, ctx: TrainContext, strategy: Strategy, make_batch: Callable[[torch.Tensor], Batch],
                 autocast: Callable, *, batch_size: int, warmup: int = 3):
        super().__init__(ctx, strategy, make_batch, autocast)
        self.batch_size, self.warmup = batch_size, warmup
        self.done_warmup = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_idx = torch.zeros(batch_size, dtype=torch.long, device=ctx.device)

    def __call__(self, bi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(bi) != self.batch_size:
            return self.run(bi, zero_in_place=self.graph is not None)
        if self.graph is None and self.done_warmup < self.warmup:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                result = self.run(bi)
            torch.cuda.current_stream().wait_stream(side)
            self.done_warmup += 1
            return result
        if self.graph is None:
            self._capture()
        self.static_idx.copy_(bi)
        self.graph.replay()
        return self.static_loss, self.static_statistic

    def _capture(self) -> None:
        self.ctx.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            # the step reads its batch through static_idx, so replays only need the indices
            loss, statistic = self.run(self.static_idx, zero_in_place=False)
        self.static_loss, self.static_statistic = loss, statistic
