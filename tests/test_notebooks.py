"""Notebooks: paired .py/.ipynb in sync, no outputs committed, each runs under papermill (smoke)."""

from pathlib import Path

import jupytext
import nbformat
import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_every_notebook_is_paired():
    assert len(NOTEBOOKS) == 8
    for py in NOTEBOOKS:
        assert py.with_suffix(".ipynb").is_file(), py


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_py_and_ipynb_in_sync_and_clean(py):
    a = jupytext.read(py)
    b = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    assert [c.source for c in a.cells] == [c.source for c in b.cells], f"{py.name}: run `make pair`"
    for c in b.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{py.name}: committed outputs"
    first = [c for c in b.cells if c.cell_type == "code"][0]
    assert "parameters" in first.metadata.get("tags", []), f"{py.name}: first code cell must be tagged parameters"
    assert "smoke" in first.source
    assert b.metadata.get("kernelspec", {}).get("name") == "python3"
    assert a.metadata["jupytext"]["cell_metadata_filter"] == "tags,-all"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_smoke(py, tmp_path):
    import papermill as pm

    out = tmp_path / py.with_suffix(".ipynb").name
    pm.execute_notebook(
        str(py.with_suffix(".ipynb")),
        str(out),
        parameters={"smoke": True},
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))


def _reader_params(name: str, tmp: Path) -> dict:
    """Parameters that keep each notebook short; everything else (data, models, sweep) is the real default."""
    return {
        "01_data": {},
        "02_models": {"max_slices": 2, "out_table": str(tmp / "q.csv"), "quality_dir": str(tmp / "quality")},
        "03_noise_attack": {
            "max_targets": 1,
            "eps": [0.0, 0.01],
            "steps": 2,
            "random_draws": 1,
            "out": str(tmp / "noise.csv"),
        },
        "04_rotation_attack": {
            "max_targets": 1,
            "max_angle": 1.0,
            "angle_step": 0.5,
            "bounds": [0.0, 1.0],
            "random_draws": 1,
            "out": str(tmp / "rotation.csv"),
        },
        "05_analysis": {"figures_dir": str(tmp / "fig"), "tables_dir": str(tmp / "tab")},
        "06_explorer": {},
        "07_beyond": {"figures_dir": str(tmp / "fig"), "tables_dir": str(tmp / "tab")},
        "08_your_model": {"out_dir": str(tmp / "card")},
    }[name]


@pytest.mark.slow
@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_from_notebooks_folder_on_the_embedded_default(py, tmp_path):
    """As JupyterLab runs it: kernel started in notebooks/, real data and models (not smoke)."""
    import papermill as pm

    from advmri.app.pipeline import make_data

    make_data(("test",))
    before = sorted(p.name for p in (ROOT / "notebooks").iterdir())
    out = tmp_path / py.with_suffix(".ipynb").name
    pm.execute_notebook(
        str(py.with_suffix(".ipynb")),
        str(out),
        parameters=_reader_params(py.stem, tmp_path),
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    assert sorted(p.name for p in (ROOT / "notebooks").iterdir()) == before, "a notebook wrote into notebooks/"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(py):
    """papermill silently skips a parameters line it cannot parse (e.g. '=' in its comment); sweeps then
    reject that parameter as unknown. Every assignment of the cell must be a parameter papermill sees."""
    import ast

    import papermill as pm

    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    cell = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])][0]
    assigned = {
        t.id
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert set(pm.inspect_notebook(str(py.with_suffix(".ipynb")))) == assigned
