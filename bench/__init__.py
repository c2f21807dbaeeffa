"""bench: a benchmarking and ablation harness for sequential recommenders.

From Python: `bench.run(...)`, `bench.results(...)`, `bench.summary(...)` (bench.api); importing
`bench` itself stays light (torch and pandas load when one of them is called).

The model families, studies and reports live in folders beside this one (models/, baselines/,
studies/, reports/) and are imported as `bench.models`, `bench.baselines`, ...: an installed wheel
holds them under bench/ (pyproject.toml's package-dir); in a source checkout the finder below maps
the four names to their folders, so nothing named `models` lands at the top level of a user's path."""
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

API = ("run", "results", "summary")
BESIDE = ("models", "baselines", "studies", "reports")


class _Beside:
    """Finds bench.models, bench.baselines, bench.studies and bench.reports in the folders beside
    bench/ when they are not inside it (a source checkout, editable or not)."""
    root = Path(__file__).resolve().parent.parent

    @classmethod
    def find_spec(cls, fullname: str, path=None, target=None):
        parent, _, name = fullname.partition(".")
        if parent != __name__ or name not in BESIDE:
            return None
        init = cls.root / name / "__init__.py"
        if not init.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[str(init.parent)])


if not any(getattr(f, "__module__", None) == __name__ for f in sys.meta_path):
    sys.meta_path.append(_Beside)


def __getattr__(name: str):
    if name in API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
