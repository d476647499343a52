"""Analyses: plain inputs -> a Result dataclass of tidy DataFrames, one module per method
(gap, shapley, fairness, compare, the imbalance benchmark and its baselines)."""
