"""The layered package tree: a module imports only from its own layer or a lower one (every import, including
those inside functions), and each package names its public API in ``__all__`` with a docstring."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "advmri"
LAYERS = ["util", "core", "data", "models", "attacks", "experiments", "report", "app"]  # lowest first


def _module(path: Path) -> str:
    return ".".join(path.relative_to(LIB.parent).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every advmri module named by an import in ``path`` (``from advmri.x import y`` counts x.y if a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("advmri")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("advmri"):
            out.add(node.module)
            out |= {
                f"{node.module}.{a.name}"
                for a in node.names
                if (LIB.parent / node.module.replace(".", "/") / f"{a.name}.py").is_file()
            }
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def layer_violations() -> list[str]:
    bad = []
    for path in sorted(LIB.rglob("*.py")):
        me = _layer(_module(path))
        if me is None:
            continue
        for dep in sorted(_imports(path)):
            other = _layer(dep)
            if other is not None and other > me:
                bad.append(f"{_module(path)} ({LAYERS[me]}) imports {dep} ({LAYERS[other]})")
    return bad


def test_lower_layers_never_import_higher_ones():
    assert layer_violations() == []


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """The test can fail: a core module importing from app is reported."""
    fake = tmp_path / "advmri"
    (fake / "core").mkdir(parents=True)
    (fake / "app").mkdir()
    (fake / "app" / "cli.py").write_text("")
    (fake / "core" / "bad.py").write_text("def f():\n    from advmri.app import cli\n")
    monkeypatch.setattr(__import__(__name__), "LIB", fake)
    assert layer_violations() == [
        "advmri.core.bad (core) imports advmri.app (app)",
        "advmri.core.bad (core) imports advmri.app.cli (app)",
    ]


def test_the_top_level_holds_only_the_layers():
    """No flat modules besides the package's own plumbing: everything lives in a layer."""
    flat = sorted(p.name for p in LIB.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "_moved.py"]
    assert sorted(p.name for p in LIB.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_each_package_states_its_public_api(layer):
    pkg = importlib.import_module(f"advmri.{layer}")
    assert pkg.__doc__ and len(pkg.__doc__.strip()) > 40
    modules = sorted(p.stem for p in (LIB / layer).glob("*.py") if p.stem != "__init__")
    assert set(modules) <= set(pkg.__all__), f"advmri.{layer}.__all__ lacks {set(modules) - set(pkg.__all__)}"
    for name in pkg.__all__:
        assert importlib.import_module(f"advmri.{layer}.{name}") if name in modules else hasattr(pkg, name)


def test_old_module_names_still_resolve_to_the_same_module():
    import warnings

    import advmri.experiments.run as new

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("advmri.run")
    assert old is new
    assert any("advmri.run moved to advmri.experiments.run" in str(w.message) for w in caught)


def test_the_project_root_is_the_checkout_from_any_folder(tmp_path):
    """Relative paths mean the checkout's folders wherever a process starts (notebooks run in notebooks/)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ADVMRI_ROOT"}
    out = subprocess.run(
        [sys.executable, "-c", "from advmri.util.paths import ROOT; print(ROOT)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(out) == LIB.parents[1]
