"""Everything that plugs into the trainer's hooks, one module per method, registered by
``@register_strategy`` (:mod:`workbench.strategies.base`: the base class and registry): naive
(the default), joint, OGM-GE, MLB, MCR, the GMM-guided loss, MultiFair, modality dropout."""
