"""Results and runs on disk: atomic writes, per-file schemas, run folders."""
