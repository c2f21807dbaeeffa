"""Training: the config, the one loop, batches, checkpoints, progress, memory, and `bench perf`."""
