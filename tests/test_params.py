"""One parameter schema: the attack CLI accepts every parameter of every committed run and replays it to the
identical run id; the notebooks' parameter cells name only schema parameters, with the schema's defaults."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from advmri.app.attack import parser, run_argv, run_from_args
from advmri.attacks.noise import NoiseConfig
from advmri.attacks.rotation import RotationConfig
from advmri.experiments.run import NOTEBOOK_DEFAULTS, NOTEBOOK_ONLY, AttackRun
from advmri.experiments.verify import RUN_KEYS, run_of
from advmri.util.errors import ParameterError

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted(ROOT.glob("results/**/params.json"))


def _cli(params: dict) -> list[str]:
    """Command-line options written from a params.json by name alone (``data_dir`` is the notebooks' ``--data``),
    independent of the schema: an option the CLI lacks makes argparse fail."""
    attack = "rotation" if "04_rotation" in params["notebook"] else "noise"
    argv = ["--attack", attack, "--out", "unused.csv"]
    for k, v in params.items():
        if k in RUN_KEYS:
            continue
        flag = "--data" if k == "data_dir" else "--" + k.replace("_", "-")
        argv += [flag, *map(str, v)] if isinstance(v, list) else [flag, str(v)]
    return argv


def test_every_committed_run_is_committed_here():
    assert len(COMMITTED) >= 70  # the paper's sweeps, beyond, checks


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_each_committed_run_replays_through_the_cli_to_its_run_id(path):
    params = json.loads(path.read_text())
    want = run_of(path.parent)
    assert path.parent.name.endswith(want.id[:8])  # the folder is named by the run id
    got = run_from_args(parser().parse_args(_cli(params)))
    assert got.id == want.id and got == want
    assert run_from_args(parser().parse_args([*run_argv(want), "--out", "x.csv"])) == want  # the written options


def test_replay_fails_when_a_parameter_is_not_passed():
    """The replay test can fail: dropping one non-default parameter changes the run id."""
    path = next(p for p in COMMITTED if "beyond" in str(p))
    params = json.loads(path.read_text())
    assert params["random_draws"] != 5
    argv = _cli({k: v for k, v in params.items() if k != "random_draws"})
    assert run_from_args(parser().parse_args(argv)).id != run_of(path.parent).id


def test_an_option_of_the_other_attack_is_refused():
    ns = parser().parse_args(["--attack", "rotation", "--eps", "0.01", "--out", "x.csv"])
    with pytest.raises(ParameterError, match="^eps: a noise-attack option, but this run is --attack rotation"):
        run_from_args(ns)


def test_every_schema_field_has_an_option_and_help_states_the_defaults():
    text = parser().format_help()
    for cls in (AttackRun, NoiseConfig, RotationConfig):
        for f in dataclasses.fields(cls):
            if f.metadata.get("cli", True):
                flag = "--" + f.name.replace("_", "-")
                assert flag in text, f"{cls.__name__}.{f.name} has no CLI option"
                assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"
                if f.default not in (None, ()):
                    assert f"(default: {f.default!r})" in " ".join(text.split()), f"{flag} help lacks its default"


def _parameters_cell(path: Path) -> dict[str, object]:
    """The assignments of a notebook's papermill ``parameters`` cell (jupytext percent format)."""
    text = path.read_text()
    cell = text.split('tags=["parameters"]', 1)[1].split("\n# %%", 1)[0]
    return {
        t.id: ast.literal_eval(node.value)
        for node in ast.parse(cell).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }


@pytest.mark.parametrize("notebook,attack", [("03_noise_attack", "noise"), ("04_rotation_attack", "rotation")])
def test_notebook_parameter_cells_name_only_schema_parameters(notebook, attack):
    cell = _parameters_cell(ROOT / "notebooks" / f"{notebook}.py")
    own = NoiseConfig if attack == "noise" else RotationConfig
    schema = {
        f.name: f.default for cls in (AttackRun, own) for f in dataclasses.fields(cls) if f.metadata.get("cli", True)
    }
    schema["data_dir"] = schema.pop("data")
    unknown = set(cell) - set(schema) - set(NOTEBOOK_ONLY)
    assert not unknown, f"notebooks/{notebook}.py parameters not in the schema: {sorted(unknown)}"
    differ = {k: v for k, v in cell.items() if k in schema and (tuple(v) if isinstance(v, list) else v) != schema[k]}
    assert differ == NOTEBOOK_DEFAULTS, "a notebook default differs from the schema's (declare it in NOTEBOOK_DEFAULTS)"
