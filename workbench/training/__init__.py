"""Training: the trainer and its steps (eager / CUDA graph), stacked many-model training
(``torch.func``) and predictions."""
