"""Is the gradient right? The checker: reference, tolerances, diagnosis, `check` and `zoo`."""
