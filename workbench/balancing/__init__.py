"""Training strategies against modality imbalance (one module per method).

``gmm_adaptive`` (GMM-guided adaptive loss), ``ogm_ge`` (OGM-GE), ``mlb`` (multi-loss
balanced gradient modulation), ``mcr`` (multimodal competition regularizer); baselines and
the benchmark grid live in :mod:`workbench.balancing.baselines` and
:mod:`workbench.balancing.benchmark`. Each strategy is registered by name in
:mod:`workbench.strategy`.
"""
