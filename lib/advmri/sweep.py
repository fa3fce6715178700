"""Papermill sweeps: ``python -m advmri.sweep sweeps/paper.yaml [--jobs N] [--device cuda]``.

A sweep YAML names the notebooks per attack, a grid (every combination of the listed values)
and common / per-attack parameters. Every run gets a deterministic id (hash of its parameters)
and a folder ``results/<sweep>/<run-id>/`` with ``params.json``, the executed ``notebook.ipynb``,
the result table ``results.csv`` and ``status.json`` (ok/failed, error, seconds, code version).

* completed runs (status ok and a result table) are skipped: a second invocation resumes;
* a failed run is recorded and reported, the other runs go on; the next invocation redoes it;
* ``--jobs N`` runs N notebooks in parallel (each in its own kernel).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from advmri.paths import project_path
from advmri.provenance import ROOT, code_version, run_id


class SweepError(ValueError):
    """A sweep file is missing or malformed. The message names the file."""


@dataclass
class Run:
    id: str
    notebook: Path
    params: dict
    folder: Path


def load_sweep(path: str | Path, results: str | Path = "results", overrides: dict | None = None) -> tuple[str, list[Run]]:
    """Expand a sweep YAML into runs. ``overrides`` (e.g. ``{'device': 'cuda'}``) apply to every run."""
    path = project_path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SweepError(f"{path}: cannot read sweep file ({e})") from e
    for key in ("name", "notebooks", "grid"):
        if not isinstance(spec, dict) or key not in spec:
            raise SweepError(f"{path}: missing key {key!r} (need name, notebooks, grid)")
    grid = spec["grid"]
    if "attack" not in grid:
        raise SweepError(f"{path}: grid must list 'attack'")
    keys = list(grid)
    runs = []
    for values in itertools.product(*(grid[k] if isinstance(grid[k], list) else [grid[k]] for k in keys)):
        p = dict(zip(keys, values))
        attack = p.pop("attack")
        if attack not in spec["notebooks"]:
            raise SweepError(f"{path}: no notebook for attack {attack!r}")
        params = dict(spec.get("common", {}))
        params.update(spec.get("per_attack", {}).get(attack, {}) or {})
        params.update(p)
        params.update(overrides or {})
        rid = f"{attack}-{Path(str(params.get('model', 'model'))).stem}-{params.get('acceleration', '')}x-" + \
            run_id(dict(params, attack=attack))[:8]
        folder = project_path(results) / spec["name"] / rid
        params["out"] = str(folder / "results.csv")
        runs.append(Run(rid, project_path(spec["notebooks"][attack]), params, folder))
    return spec["name"], runs


def is_done(run: Run) -> bool:
    st = run.folder / "status.json"
    return st.is_file() and json.loads(st.read_text()).get("status") == "ok" and (run.folder / "results.csv").is_file()


def execute_run(run: Run, kernel: str = "python3") -> dict:
    """Execute one run's notebook with papermill; never raises (the status says what happened)."""
    import papermill as pm

    run.folder.mkdir(parents=True, exist_ok=True)
    (run.folder / "params.json").write_text(json.dumps(dict(run.params, notebook=str(run.notebook.relative_to(ROOT))),
                                                       indent=1, sort_keys=True))
    t0 = time.perf_counter()
    status = dict(run_id=run.id, code_version=code_version())
    try:
        pm.execute_notebook(str(run.notebook), str(run.folder / "notebook.ipynb"), parameters=run.params,
                            kernel_name=kernel, cwd=str(ROOT), progress_bar=False, log_output=False)
        if not (run.folder / "results.csv").is_file():
            raise RuntimeError("notebook finished without writing results.csv")
        status.update(status="ok")
    except Exception as e:  # a failed run is recorded, the sweep goes on
        status.update(status="failed", error=f"{e.__class__.__name__}: {str(e)[-2000:]}",
                      traceback=traceback.format_exc()[-4000:])
    status["seconds"] = round(time.perf_counter() - t0, 2)
    tmp = run.folder / "status.json.tmp"
    tmp.write_text(json.dumps(status, indent=1))
    os.replace(tmp, run.folder / "status.json")
    return status


def run_sweep(path: str | Path, jobs: int = 1, results: str | Path = "results", overrides: dict | None = None,
              log=print) -> dict[str, dict]:
    """Run every pending run of a sweep; returns ``{run id: status}`` (skipped runs: ``skipped``)."""
    name, runs = load_sweep(path, results, overrides)
    todo = [r for r in runs if not is_done(r)]
    log(f"sweep {name}: {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run")
    out = {r.id: {"status": "skipped"} for r in runs if r not in todo}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        for r, st in zip(todo, ex.map(execute_run, todo)):
            out[r.id] = st
            log(f"  {r.id}: {st['status']} ({st['seconds']} s){'  ' + st.get('error', '')[:300] if st['status'] != 'ok' else ''}")
    failed = [k for k, v in out.items() if v["status"] == "failed"]
    if failed:
        log(f"sweep {name}: {len(failed)} failed run(s): {failed}; run the sweep again to retry them")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m advmri.sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--device", default=None, help="override the device of every run (cpu, cuda)")
    ap.add_argument("--results", default="results")
    a = ap.parse_args(argv)
    st = run_sweep(a.config, a.jobs, a.results, {"device": a.device} if a.device else None)
    return 1 if any(v["status"] == "failed" for v in st.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
