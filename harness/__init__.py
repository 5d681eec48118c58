"""backprop-bench harness: config, data, checks, timing, storage, reports, CLI (python -m harness)."""
