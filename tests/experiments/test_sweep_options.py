"""The options ``advmri sweep`` and the main job share come from one schema (:class:`SweepOptions`): the same flags,
help and choices in both CLIs, the main job's ``--verify`` default the one it declares; ``--jobs`` is not taken
for a SLURM resource; a run's ``params.json`` and ``status.json`` keep their bytes (through
:class:`advmri.experiments.record.RunRecord`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re

import pytest
from conftest import ROOT

from advmri.app import pipeline
from advmri.experiments import sweep
from advmri.experiments.sweep import SweepOptions
from advmri.util.schema import cli_fields, given

SHARED = cli_fields(SweepOptions)


def _actions(ap: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in ap._actions}


def _without_default(text: str | None) -> str:
    return re.sub(r" \(default: [^)]*\)$", "", text or "")


def test_both_clis_have_the_shared_options_with_the_same_help():
    s, p = _actions(sweep.parser()), _actions(pipeline.parser())
    assert {"verify", "verify_runs", "allow_dirty", "fresh", "yes"} <= set(SHARED)
    for name in SHARED:
        a, b = s[name], p[name]
        assert a.option_strings == b.option_strings, name
        assert (a.choices, a.type, a.metavar, type(a)) == (b.choices, b.type, b.metavar, type(b)), name
        assert _without_default(a.help) == _without_default(b.help) and a.help, name
        assert a.help == b.help or name == "verify", f"{name}: only --verify has another default in the main job"
    assert s["verify"].help.endswith("(default: '0')") and p["verify"].help.endswith("(default: '1')")


def test_the_main_job_verifies_one_pass_by_default_and_the_sweep_none():
    assert (pipeline.PipelineOptions().verify, SweepOptions().verify) == ("1", "0")
    assert dataclasses.replace(pipeline.PipelineOptions(), verify="0") == pipeline.PipelineOptions(
        **dataclasses.asdict(SweepOptions())
    )  # the verify default is the only difference
    o = SweepOptions(**given(sweep.parser().parse_args(["s.yaml"]), SweepOptions))
    q = pipeline.PipelineOptions(**given(pipeline.parser().parse_args([]), pipeline.PipelineOptions))
    assert (o.verify, q.verify) == ("0", "1")
    assert (o.verify_runs, o.allow_dirty, o.fresh, o.yes) == (q.verify_runs, q.allow_dirty, q.fresh, q.yes)
    assert (o.verify_runs, o.allow_dirty, o.fresh, o.yes) == ("cover", False, False, False)


@pytest.mark.parametrize("module", ["sweep", "pipeline"])
def test_given_shared_options_are_parsed_alike(module):
    argv = ["--verify", "all", "--verify-runs", "all", "--allow-dirty", "--fresh", "--yes"]
    if module == "sweep":
        o = SweepOptions(**given(sweep.parser().parse_args(["s.yaml", *argv]), SweepOptions))
    else:
        o = pipeline.PipelineOptions(**given(pipeline.parser().parse_args(argv), pipeline.PipelineOptions))
    assert dataclasses.asdict(o) == dict(verify="all", verify_runs="all", allow_dirty=True, fresh=True, yes=True)
    with pytest.raises(SystemExit):
        sweep.parser().parse_args(["s.yaml", "--verify-runs", "some"])


def test_jobs_is_not_a_slurm_resource():
    """``--jobs`` is the sweep's own option: given with another engine it must not read as a SLURM one."""
    a = sweep.parser().parse_args(["s.yaml", "--jobs", "2", "--partition", "gpu", "--cores", "4"])
    assert sweep.slurm_options(a) == {"partition": "gpu", "cores": 4}
    assert sweep.slurm_options(sweep.parser().parse_args(["s.yaml", "--jobs", "2"])) == {}


def test_run_files_keep_their_bytes(tmp_path, monkeypatch):
    """``execute_run`` writes ``params.json`` (indent 1, sorted keys) and ``status.json`` (indent 1, in the order
    run_id, code_version, machine, status, results_sha256, results_rows, seconds) as before."""
    import papermill

    from advmri.experiments.record import RunRecord, table_digest

    def fake_execute(nb, out, parameters, **kw):
        (tmp_path / "r" / "results.csv").write_text("a,b\n1,2\n3,4\n")

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    nb = ROOT / "notebooks" / "03_noise_attack.ipynb"
    run = sweep.Run("noise-x-4x-0123abcd", nb, {"z": 1, "acceleration": 4, "model": "m.pt"}, tmp_path / "r")
    status = sweep.execute_run(run)
    rec = RunRecord(run.folder)
    params = dict(run.params, notebook="notebooks/03_noise_attack.ipynb")
    assert rec.params_path.read_text() == json.dumps(params, indent=1, sort_keys=True)
    assert rec.status_path.read_text() == json.dumps(status, indent=1)
    sha, rows = table_digest(rec.table)
    assert list(status) == ["run_id", "code_version", "machine", "status", "results_sha256", "results_rows", "seconds"]
    assert (status["status"], status["results_sha256"], status["results_rows"]) == ("ok", sha, 2)
    assert sweep.read_status(run.folder) == status and sweep.verify_table(run.folder) is None
    rec.table.write_text("a,b\n1,2\n")
    assert "changed since the run" in (sweep.verify_table(run.folder) or "")
