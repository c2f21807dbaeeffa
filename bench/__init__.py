"""bench: a benchmarking and ablation harness for sequential recommenders.

From Python: `bench.run(...)`, `bench.results(...)`, `bench.summary(...)` (bench.api); importing
`bench` itself stays light (torch and pandas load when one of them is called)."""

__version__ = "0.1.0"

API = ("run", "results", "summary")


def __getattr__(name: str):
    if name in API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
