"""Everything that plugs into the trainer's hooks, one module per method: the base class and
registry (:mod:`workbench.strategies.base`), OGM-GE, MLB, MCR, the GMM-guided loss, MultiFair,
modality dropout."""
