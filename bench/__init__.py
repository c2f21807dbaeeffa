"""bench: a benchmarking and ablation harness for sequential recommenders."""

__version__ = "0.1.0"
