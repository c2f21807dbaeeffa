"""Runs: one run end to end, grids of them, their identity, artifacts, locks, the results store, `bench status` and `bench results`."""
