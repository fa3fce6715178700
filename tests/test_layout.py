"""The tests mirror the library: every module ``lib/advmri/<layer>/<mod>.py`` with a public function or class has its
tests in ``tests/<layer>/test_<mod>.py``, or is named in :data:`NO_TEST_FILE` with the reason; each file of
``tests/<layer>/`` belongs to a module of that layer; test files have unique names; the slow list names real tests.
Cross-cutting tests stay at the top (:data:`TOP_LEVEL`); ``tests/faults/`` is the fault-injection suite."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import conftest

TESTS = Path(__file__).resolve().parent
LIB = TESTS.parent / "lib" / "advmri"
LAYERS = ["util", "core", "data", "models", "attacks", "experiments", "report", "app"]

# Modules without a test file of their own, and where they are exercised instead. A new module with public API
# needs tests/<layer>/test_<mod>.py (or an entry here saying why not).
NO_TEST_FILE = {
    "util/atomic": "atomic writes and disk-full checks: tests/faults/test_fault_disk.py injects ENOSPC into "
    "write_together and fills a small file system",
    "util/errors": "the one-line user errors every module raises: their messages (did_you_mean, check_range, "
    "check_choice, one_line) are asserted by the bad-input probes of each module's tests and "
    "tests/faults/test_fault_messages.py",
    "util/locks": "one writer per output: tests/faults/test_fault_writers.py (two trainers, two sweeps, the holder "
    "named) and the refused second sweep of tests/experiments/test_sweep.py",
    "util/paths": "project-relative paths: no direct test; exercised by every module that reads or writes a "
    "project file (sweeps, runs, the book and the paper)",
    "util/schema": "the parameter schema behind the CLIs: tests/experiments/test_slurm.py checks that every SLURM "
    "field has an option and help; the attack CLI built from it is driven by tests/app/test_attack.py",
    "core/masks": "fastMRI's mask functions, restricted to the acquired columns: tests/data/test_dataset.py "
    "(test_masks_accelerations) and the mask draws of tests/attacks/test_noise.py",
    "data/phantom": "the knee phantom drawn by data.synth: tests/data/test_synth.py (layout, determinism, lesions in "
    "the flipped boxes)",
    "experiments/smoke": "the smoke set-up (tiny data, untrained models, a noise store) used by the smoke sweeps and "
    "notebooks: tests/app/test_live.py, tests/experiments/test_sweep.py, tests/test_notebooks.py",
    "report/values": "the numbers of the article: tests/report/test_paper.py (values-*.json filled in, a missing one "
    "stops the build) and tests/report/test_beyond.py (values-beyond.json written)",
    "app/explore": "thin `python -m advmri.app.explore` wrapper around app.servers.voila_command, which "
    "tests/app/test_servers.py serves to a browser",
    "app/lab": "thin `python -m advmri.app.lab` wrapper around app.servers.lab_command, which "
    "tests/app/test_servers.py runs in a browser",
    "app/pipeline": "the main job (`python3 tasks.py all`); its make_data is run by tests/test_notebooks.py and "
    "tests/app/test_servers.py on the embedded default",
}

# top-level test files: cross-cutting, of no single module
TOP_LEVEL = {
    "test_layers.py": "the import graph of the layers",
    "test_layout.py": "this file",
    "test_notebooks.py": "the notebooks/ folder (paired, clean, each runs under papermill)",
    "test_params.py": "added beside this reorganisation (attack CLI <-> schema <-> committed runs): belongs in "
    "tests/app/test_attack.py; move it there and drop this entry",
}


def public_api(path: Path) -> list[str]:
    """Top-level functions and classes of a module whose names do not start with ``_``."""
    tree = ast.parse(path.read_text())
    return [
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith("_")
    ]


def modules(lib: Path) -> dict[str, Path]:
    """``layer/mod`` -> path for every module of a layer (no ``__init__``)."""
    return {
        f"{p.parent.name}/{p.stem}": p
        for layer in LAYERS
        for p in sorted((lib / layer).glob("*.py"))
        if p.stem != "__init__"
    }


def missing_tests(lib: Path, tests: Path, allowed: dict[str, str]) -> list[str]:
    """Modules with public API, no ``tests/<layer>/test_<mod>.py`` and no entry in ``allowed``."""
    return [
        m
        for m, p in modules(lib).items()
        if public_api(p) and m not in allowed and not (tests / m.split("/")[0] / f"test_{m.split('/')[1]}.py").is_file()
    ]


def test_every_module_has_a_test_file_or_a_stated_reason():
    assert missing_tests(LIB, TESTS, NO_TEST_FILE) == []


def test_the_reasons_are_current():
    """An entry for a module that is gone, has no public API or has a test file by now is removed."""
    mods = modules(LIB)
    for m, why in NO_TEST_FILE.items():
        assert m in mods and public_api(mods[m]), f"{m}: no such module with public API; drop it from NO_TEST_FILE"
        assert not (TESTS / m.split("/")[0] / f"test_{m.split('/')[1]}.py").is_file(), f"{m} has a test file now"
        assert len(why) > 30, m


def test_the_check_sees_a_new_module_without_tests(tmp_path):
    """The test can fail: a new module with a public function and no test file is reported; a private-only module,
    a module with its test file and an allowed one are not."""
    lib, tests = tmp_path / "advmri", tmp_path / "tests"
    for layer in LAYERS:
        (lib / layer).mkdir(parents=True)
        (lib / layer / "__init__.py").write_text('"""x"""\n__all__ = []\n')
    (lib / "core" / "newmod.py").write_text("def transform(x):\n    return x\n")
    (lib / "core" / "private.py").write_text("def _helper():\n    pass\n")
    (lib / "core" / "tested.py").write_text("class Thing:\n    pass\n")
    (lib / "app" / "thin.py").write_text("def main():\n    return 0\n")
    (tests / "core").mkdir(parents=True)
    (tests / "core" / "test_tested.py").write_text("")
    assert missing_tests(lib, tests, {"app/thin": "a wrapper"}) == ["core/newmod"]
    (tests / "core" / "test_newmod.py").write_text("")
    assert missing_tests(lib, tests, {"app/thin": "a wrapper"}) == []
    assert missing_tests(lib, tests, {}) == ["app/thin"]


def test_each_layer_folder_holds_tests_of_its_own_modules():
    """tests/<layer>/test_<mod>.py or test_<mod>_<aspect>.py (e.g. test_sweep_dask.py) for a module of that layer."""
    mods = modules(LIB)
    stray = []
    for layer in LAYERS:
        for p in sorted((TESTS / layer).glob("*.py")):
            stem = p.stem.removeprefix("test_")
            if not p.name.startswith("test_") or not any(
                stem == m.split("/")[1] or stem.startswith(m.split("/")[1] + "_")
                for m in mods
                if m.startswith(layer + "/")
            ):
                stray.append(str(p.relative_to(TESTS)))
    assert stray == []
    assert sorted(p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(
        LAYERS + ["faults"]
    )


def test_top_level_holds_only_cross_cutting_tests():
    assert sorted({p.name for p in TESTS.glob("test_*.py")} - set(TOP_LEVEL)) == []


def test_test_file_names_are_unique():
    """Without __init__.py files pytest imports test modules by their file name: two of one name would clash
    (and `from conftest import ...` works from every folder because tests/ is on sys.path as conftest's folder)."""
    names = Counter(p.name for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)
    assert [n for n, c in names.items() if c > 1] == []
    assert not list(TESTS.rglob("__init__.py"))


def test_the_slow_list_names_existing_tests():
    """conftest.SLOW_TESTS matches node ids: after a move or rename an entry would silently stop marking its test."""
    for node in conftest.SLOW_TESTS:
        path, name = node.split("::")
        file = TESTS.parent / path
        assert file.is_file(), node
        defined = {n.name for n in ast.parse(file.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert name.split("[")[0] in defined, node
