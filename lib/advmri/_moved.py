"""Old module names (before the layered tree) keep importing and running: ``import advmri.run`` or
``python -m advmri.attack`` resolve to the module's new home with a :class:`DeprecationWarning` naming it.

The alias is the *same* module object (``sys.modules`` holds it under both names), so classes and state are
never duplicated.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

__all__ = ["MOVED", "install"]

_LAYOUT = {
    "util": "errors paths schema atomic locks provenance perf kernels",
    "core": "kspace metrics",
    "models": "classical train usermodel",
    "experiments": "run sweep verify recons recontrol quality evaluate slurm smoke threats",
    "report": "analysis stats claims figures values book paper beyond checks card leaderboard modelcard",
    "app": "cli attack benchmark pipeline widgets live explore lab servers envcheck",
}
MOVED: dict[str, str] = {f"advmri.{m}": f"advmri.{pkg}.{m}" for pkg, ms in _LAYOUT.items() for m in ms.split()}
MOVED["advmri.data.masks"] = "advmri.core.masks"


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # a placeholder, replaced in sys.modules by the real module in exec_module

    def exec_module(self, module: ModuleType) -> None:
        old = module.__name__
        warnings.warn(f"{old} moved to {MOVED[old]}", DeprecationWarning, stacklevel=2)
        sys.modules[old] = importlib.import_module(MOVED[old])

    def get_code(self, name: str) -> object:  # python -m advmri.<old>: run the new module's code as __main__
        spec = importlib.util.find_spec(MOVED[name])
        assert spec is not None and spec.loader is not None
        return spec.loader.get_code(MOVED[name])  # type: ignore[attr-defined]


def install() -> None:
    """Put the alias finder on sys.meta_path (once; after the real modules, so it only answers old names)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
