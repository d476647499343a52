"""Statistics with numpy/scipy only (no project imports): conformal intervals, confidence intervals."""
