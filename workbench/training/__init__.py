"""Training: the config (one declaration per parameter), the optimizers, the trainer and its
steps (eager / CUDA graph), stacked many-model training (``torch.func``), predictions and
:func:`~workbench.training.train.train`."""
