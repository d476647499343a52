"""Long-running orchestration: sweeps on Dask and the demo."""
