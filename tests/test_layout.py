"""The tests mirror the library: every module ``lib/advmri/<layer>/<mod>.py`` with a public function or class has its
tests in ``tests/<layer>/test_<mod>.py``, or is named in :data:`NO_TEST_FILE` with the reason; each file of
``tests/<layer>/`` belongs to a module of that layer; test files have unique names; the slow list names real tests.
Cross-cutting tests stay at the top (:data:`TOP_LEVEL`); ``tests/faults/`` is the fault-injection suite.
The library's functions stay short (:data:`MAX_FUNCTION_LINES`) and ruff and mypy are configured in pyproject.toml.
Each check is a function run here on the project and, to show it can fail, on a small bad example."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import conftest
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

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
}

# top-level test files: cross-cutting, of no single module
TOP_LEVEL = {
    "test_layers.py": "the import graph of the layers",
    "test_architecture.py": "the README's architecture section (the layer table, the files it names)",
    "test_layout.py": "this file",
    "test_notebooks.py": "the notebooks/ folder (paired, clean, each runs under papermill)",
    "test_examples.py": "the examples/ folder (the reference defences around the committed U-Net)",
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


def _literal_ids(fn: ast.FunctionDef) -> set[str] | None:
    """The ids of a ``@pytest.mark.parametrize("x", ["a", "b"])`` over a literal list of strings (without ``ids=``);
    None where they are computed (``ids=``, a variable, several parameters) and cannot be checked statically."""
    for d in fn.decorator_list:
        if isinstance(d, ast.Call) and getattr(d.func, "attr", None) == "parametrize":
            if len(d.args) < 2 or d.keywords or not isinstance(d.args[1], (ast.List, ast.Tuple)):
                return None
            values = [e.value for e in d.args[1].elts if isinstance(e, ast.Constant)]
            literal = len(values) == len(d.args[1].elts) and all(isinstance(v, str) for v in values)
            return set(values) if literal else None
    return None


def unknown_slow_tests(nodes: Iterable[str], root: Path) -> list[str]:
    """Node ids ``tests/<path>.py::test[id]`` naming no file, no top-level test function of that name, or (where the
    parametrization is a literal list of strings) no such id."""
    bad = []
    for node in sorted(nodes):
        path, _, name = node.partition("::")
        file = root / path
        tests = (
            {n.name: n for n in ast.parse(file.read_text()).body if isinstance(n, ast.FunctionDef)}
            if file.is_file()
            else {}
        )
        fn = tests.get(name.split("[")[0])
        ids = _literal_ids(fn) if fn is not None else None
        if fn is None or ("[" in name and ids is not None and name.split("[", 1)[1].removesuffix("]") not in ids):
            bad.append(node)
    return bad


def test_the_slow_list_names_existing_tests():
    """conftest.SLOW_TESTS matches node ids: after a move or rename an entry would silently stop marking its test."""
    assert unknown_slow_tests(conftest.SLOW_TESTS, TESTS.parent) == []


def test_the_slow_list_check_sees_a_moved_or_renamed_test(tmp_path):
    (tmp_path / "tests" / "core").mkdir(parents=True)
    (tmp_path / "tests" / "core" / "test_a.py").write_text(
        'import pytest\n\n\ndef test_one():\n    pass\n\n\n@pytest.mark.parametrize("k", ["x", "y"])\n'
        'def test_two(k):\n    pass\n\n\n@pytest.mark.parametrize("k", K, ids=str)\ndef test_three(k):\n    pass\n'
    )
    good = [
        "tests/core/test_a.py::test_one",
        "tests/core/test_a.py::test_two[y]",
        "tests/core/test_a.py::test_three[q]",
    ]
    bad = ["tests/core/test_a.py::test_gone", "tests/core/test_a.py::test_two[z]", "tests/data/test_a.py::test_one"]
    assert unknown_slow_tests(good + bad, tmp_path) == sorted(bad)


# ---------------------------------------------------------------------------------------------
# short functions: split a longer one along its natural seams (load -> compute -> record)
MAX_FUNCTION_LINES = 60


def long_functions(lib: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``lib/<path>.py:<line> <name> (<n> lines)`` for every function, method or nested function under ``lib`` longer
    than ``limit`` lines, counted from ``def`` to its last line (docstring included, decorators not)."""
    out = []
    for p in sorted(lib.rglob("*.py")):
        defs = [n for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for n in sorted(defs, key=lambda n: n.lineno):
            length = (n.end_lineno or n.lineno) - n.lineno + 1
            if length > limit:
                out.append(f"{p.relative_to(lib.parent).as_posix()}:{n.lineno} {n.name} ({length} lines)")
    return out


def test_no_function_in_lib_is_longer_than_60_lines():
    long = long_functions(LIB.parent)
    assert long == [], f"{len(long)} functions longer than {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_the_length_check_sees_a_long_function(tmp_path):
    """The test can fail: functions of 61 lines (top level, a method, a nested one) are reported, 60 lines pass,
    and a decorator does not count."""
    lib = tmp_path / "lib" / "advmri" / "core"
    lib.mkdir(parents=True)

    def body(n: int, indent: str = "    ") -> str:  # a def line and n - 1 more
        return "".join(f"{indent}x{i} = {i}\n" for i in range(n - 2)) + f"{indent}return 0\n"

    (lib / "ok.py").write_text("@staticmethod\ndef at_limit():\n" + body(60))
    (lib / "bad.py").write_text(
        "def too_long():\n"
        + body(61)
        + "\n\nclass C:\n    def method(self):\n"
        + body(61, " " * 8)
        + "\n\ndef outer():\n    def inner():\n"
        + body(61, " " * 8)
        + "    return inner\n"
    )
    assert long_functions(tmp_path / "lib") == [
        "lib/advmri/core/bad.py:1 too_long (61 lines)",
        "lib/advmri/core/bad.py:65 method (61 lines)",
        "lib/advmri/core/bad.py:128 outer (63 lines)",
        "lib/advmri/core/bad.py:129 inner (61 lines)",
    ]
    assert long_functions(tmp_path / "lib", limit=63) == []


# ---------------------------------------------------------------------------------------------
# lint configuration: ruff on the whole project, mypy on the library with strict flags on the pure layers
RUFF_RULES = {"E", "F", "W", "I", "B", "UP"}  # pyflakes, pycodestyle, import order, bugbear, pyupgrade
STRICT_MODULES = ("advmri.core.*", "advmri.attacks.*")
STRICT_FLAGS = (
    "disallow_untyped_defs",
    "disallow_incomplete_defs",
    "disallow_untyped_calls",
    "disallow_any_generics",
    "warn_return_any",
)


def lint_config_problems(pyproject: dict) -> list[str]:
    """What is missing from ``[tool.ruff]`` (line length 120, the rule families of :data:`RUFF_RULES`) and
    ``[tool.mypy]`` (the advmri package, check_untyped_defs, :data:`STRICT_FLAGS` on :data:`STRICT_MODULES`)."""
    tool = pyproject.get("tool", {})
    ruff, mypy = tool.get("ruff"), tool.get("mypy")
    problems = []
    if ruff is None:
        problems.append("[tool.ruff] missing")
    else:
        if ruff.get("line-length") != 120:
            problems.append(f"[tool.ruff] line-length is {ruff.get('line-length')}, not 120")
        missing = RUFF_RULES - set(ruff.get("lint", {}).get("select", []))
        if missing:
            problems.append(f"[tool.ruff.lint] select lacks {sorted(missing)}")
    if mypy is None:
        return [*problems, "[tool.mypy] missing"]
    if "advmri" not in mypy.get("packages", []):
        problems.append("[tool.mypy] packages lacks advmri")
    if mypy.get("check_untyped_defs") is not True:
        problems.append("[tool.mypy] check_untyped_defs is not on")
    for module in STRICT_MODULES:
        flags: dict = {}
        for o in mypy.get("overrides", []):
            if module in ([o["module"]] if isinstance(o.get("module"), str) else o.get("module", [])):
                flags.update(o)
        off = [f for f in STRICT_FLAGS if flags.get(f) is not True]
        if off:
            problems.append(f"[tool.mypy] {module}: {', '.join(off)} not on")
    return problems


def test_ruff_and_mypy_are_configured():
    pyproject = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())
    assert lint_config_problems(pyproject) == []


def test_the_config_check_sees_a_missing_setting():
    """The test can fail: a smaller rule set, a strict flag off for the attacks, a missing section are reported."""
    pyproject = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())
    pyproject["tool"]["ruff"]["lint"]["select"] = ["E", "F"]
    strict = next(o for o in pyproject["tool"]["mypy"]["overrides"] if "advmri.attacks.*" in o["module"])
    strict["module"] = ["advmri.core.*"]
    pyproject["tool"]["mypy"]["overrides"].append({"module": "advmri.attacks.*", **dict.fromkeys(STRICT_FLAGS, True)})
    pyproject["tool"]["mypy"]["overrides"][-1]["warn_return_any"] = False
    assert lint_config_problems(pyproject) == [
        "[tool.ruff.lint] select lacks ['B', 'I', 'UP', 'W']",
        "[tool.mypy] advmri.attacks.*: warn_return_any not on",
    ]
    assert lint_config_problems({"tool": {}}) == ["[tool.ruff] missing", "[tool.mypy] missing"]
