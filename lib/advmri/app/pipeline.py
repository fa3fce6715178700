"""The main job: data -> models -> attacks (papermill sweep) -> analysis -> paper.

``python -m advmri.app.pipeline [--until STEP] [--retrain] [--jobs N] [--device cuda]``

Steps (each skipped when its output exists, except where forced):
``data`` generate the embedded synthetic set (train: 20 volumes seed 0, test: 28 volumes seed 1);
``train`` train both small models (only when a checkpoint is missing, or with ``--retrain``);
``notebooks`` execute 01_data, 02_models (quality table -> ``paper/tables/quality.md``) and 08_your_model, in the
background beside the sweep (they need the data only; :data:`BESIDE`);
``sweep`` run ``sweeps/paper.yaml``, ``interpolation.yaml``, ``beyond.yaml`` and ``checks.yaml`` (runs whose
committed results verify are reused: a seeded pass of the cheapest runs that exercise every feature is recomputed
first, in one pool; ``--fresh`` recomputes all); ``analysis`` execute 05_analysis and 07_beyond ->
``paper/figures``, ``paper/tables``; ``paper`` build the article: ``paper/_build/html/index.html`` (a Sphinx
book) and ``paper/_build/pdf/paper.pdf`` (:mod:`advmri.report.book`), and ``paper/build/paper.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict

import pandas as pd

from advmri.experiments.sweep import VERIFY_HELP, SweepOptions
from advmri.util.errors import cli, prog
from advmri.util.provenance import ROOT
from advmri.util.schema import add_arguments, given, option

STEPS = ["data", "train", "notebooks", "sweep", "analysis", "paper"]
DATA = ROOT / "data" / "synthetic" / "small"
TEST_VOLUMES = 28


class Plateau(TypedDict):
    """Phase 2 of training (:data:`PLATEAU`)."""

    max_steps: int
    lr: float
    tol: float
    precision: str


# phase 2 of training: constant lr from the phase-1 checkpoint until val SSIM gains < tol per doubling
PLATEAU: Plateau = {"max_steps": 6000, "lr": 5e-4, "tol": 0.005, "precision": "bf16"}
SWEEPS = ("paper", "interpolation", "beyond", "checks")  # sweeps/<name>.yaml, results in results/<name>/
MODELS = {"varnet": (ROOT / "models" / "varnet-small.pt", 700), "unet": (ROOT / "models" / "unet-small.pt", 900)}


def make_data(splits: tuple[str, ...] = ("train", "test")) -> list[str]:
    """The embedded default data set (train: 20 volumes seed 0, test: 28 volumes seed 1, 93 located boxes),
    when missing or of another size (the derived data folder is regenerated; volumes are bit-identical
    per (seed, index), so the first 6 test volumes are those of the earlier 6-volume split)."""
    from advmri.data.fastmri_h5 import read_info
    from advmri.data.synth import generate_dataset

    made = []
    for split, n, seed in (("train", 20, 0), ("test", TEST_VOLUMES, 1)):
        if split not in splits:
            continue
        listed = DATA / split / "knee_file_list.csv"
        names = listed.read_text().split() if listed.is_file() else []
        first = DATA / split / "multicoil" / f"{names[0]}.h5" if names else None
        if not (DATA / split / "knee.csv").is_file() or len(names) != n:  # missing, incomplete or an older size
            if names:
                print(
                    f"   {DATA / split}: {len(names)} volumes, the embedded default has {n}; regenerating it",
                    flush=True,
                )
            generate_dataset("small", n, seed, DATA / split, force=True)
            made.append(f"{split} ({n} volumes)")
        elif first is None or not first.is_file() or not read_info(first).has_healthy_kspace:
            print(
                f"   {DATA / split}: made before the twins' k-space was stored ('kspace_healthy', for "
                "hallucination attacks); regenerating it (the lesioned k-space is bit-identical)",
                flush=True,
            )
            generate_dataset("small", n, seed, DATA / split, force=True)
            made.append(f"{split} ({n} volumes)")
    return made


COIL_COUNTS = (4, 8, 15, 24)  # the budget law of the authors' update (sweeps/checks.yaml); 15: fastMRI knee
COIL_DATA = ROOT / "data" / "synthetic" / "coils"


def make_coil_data(coils: tuple[int, ...] = COIL_COUNTS, volumes: int = 3, seed: int = 1) -> list[str]:
    """Test sets of the ``small`` geometry with other coil counts (``data/synthetic/coils/c<C>/test``), for the
    attained budget fraction of the authors' update as a function of the coil count (``sweeps/checks.yaml``)."""
    from dataclasses import replace

    from advmri.data.synth import PRESETS, generate_dataset

    made = []
    for c in coils:
        out = COIL_DATA / f"c{c}" / "test"
        listed = out / "knee_file_list.csv"
        if not (out / "knee.csv").is_file() or len(listed.read_text().split()) != volumes:
            generate_dataset(
                replace(PRESETS["small"], name=f"small-c{c}", coils=c), volumes, seed, out, force=True, progress=False
            )
            made.append(f"{c}-coil test ({volumes} volumes)")
    return made


def _nb(name: str, executed: Path, position: int | None = 0, **params) -> None:
    """Execute ``notebooks/<name>.ipynb`` with ``params`` into the folder ``executed`` (papermill's bar of cells at
    line ``position``; None: no bar, a line when it is done)."""
    import papermill as pm

    executed.mkdir(parents=True, exist_ok=True)
    from advmri.util.kernels import EncryptedKernelManager

    t0 = time.perf_counter()
    pm.execute_notebook(
        str(ROOT / "notebooks" / f"{name}.ipynb"),
        str(executed / f"{name}.ipynb"),
        parameters=params,
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False if position is None else dict(desc=name, position=position),
        kernel_manager_class=EncryptedKernelManager,
    )
    if position is None:
        print(f"   {name}: executed ({time.perf_counter() - t0:.0f} s)", flush=True)


def _nbs(notebooks: dict[str, dict], executed: Path, jobs: int, bars: bool = True) -> None:
    """Execute several independent notebooks (name -> parameters), ``jobs`` at a time (each in its own kernel
    process), a bar for each (``bars=False``, in the background: a line as each is done); the first failure is
    raised once the others have finished."""
    from concurrent.futures import ThreadPoolExecutor

    if jobs <= 1 or len(notebooks) <= 1:
        for name, params in notebooks.items():
            _nb(name, executed, 0 if bars else None, **params)
        return
    with ThreadPoolExecutor(min(jobs, len(notebooks))) as pool:
        futures = [
            pool.submit(_nb, name, executed, i if bars else None, **p) for i, (name, p) in enumerate(notebooks.items())
        ]
    for f in futures:
        f.result()


def _boxes(max_targets: int) -> str:
    """``max_targets`` of a sweep in words (0 selects every located box)."""
    return "all located boxes (93)" if not max_targets else f"{max_targets} evenly spaced boxes"


@dataclass(frozen=True)
class PipelineOptions(SweepOptions):
    """The sweep options of the main job: those of ``advmri sweep`` (one schema, :class:`SweepOptions`) but for the
    default of ``--verify``, overridden here and only here: the main job recomputes one seeded pass of every reused
    run (the sweep alone trusts the recorded sha256)."""

    verify: str = option("1", VERIFY_HELP)


def parser() -> argparse.ArgumentParser:
    """The main job's CLI: the steps, training and job options, then the sweep options (:class:`PipelineOptions`)."""
    ap = argparse.ArgumentParser(prog=prog("advmri.app.pipeline"), description=__doc__.split("\n\n")[0])
    ap.add_argument("--until", choices=STEPS, default="paper")
    ap.add_argument(
        "--from",
        dest="start",
        choices=STEPS,
        default="data",
        help="first step to run (the earlier steps' outputs must exist)",
    )
    ap.add_argument("--retrain", action="store_true", help="train the models from scratch")
    ap.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="attack runs at a time (each pinned to its own thread count; default: CPU cores)",
    )
    ap.add_argument("--device", default="cpu")
    add_arguments(ap, PipelineOptions)
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    return ap


def _current_step(times: dict[str, float], start: str) -> str:
    """The step that was running (the first from ``start`` on that did not finish), or ``?``."""
    return next((s for s in STEPS if s not in times and STEPS.index(s) >= STEPS.index(start)), "?")


@cli
def main(argv: list[str] | None = None) -> int:
    """The main job: the steps ``--from`` .. ``--until``, then the summary of what each reused and recomputed."""
    a = parser().parse_args(argv)
    vars(a).update(asdict(PipelineOptions(**given(a, PipelineOptions))))  # the sweep options, defaults filled in
    overrides = {"device": a.device} if a.device != "cpu" else None
    if isinstance(sys.stdout, io.TextIOWrapper):  # progress lines appear as they are printed, also in a log file
        sys.stdout.reconfigure(line_buffering=True)
    t_all = time.perf_counter()
    times: dict[str, float] = {}
    try:
        _steps(a, overrides, times)
    except KeyboardInterrupt:
        done = ", ".join(times) or "none"
        print(
            f"interrupted during step {_current_step(times, a.start)}"
            f" (completed: {done}); run again to go on: finished steps and completed runs are reused",
            flush=True,
        )
        raise
    print(summary(times, time.perf_counter() - t_all))
    return 0


NOTES: dict[str, str] = {}  # step -> what it reused, verified and recomputed (the final summary)


BACKGROUND: set[str] = set()  # the steps that ran in the background (:data:`BESIDE`)


def summary(times: dict[str, float], total: float) -> str:
    """The main job's last lines: each step's time and what it reused, verified and recomputed (in step order; a
    step that ran in the background overlaps the following ones, so the times add up to more than the total)."""
    lines = [f"== summary: main job done in {total:.0f} s"]
    for step in sorted(times, key=STEPS.index):
        beside = f" (in the background, beside the steps until {BESIDE[step]})" if step in BACKGROUND else ""
        lines.append(f"   {step:<10} {times[step]:6.0f} s   {NOTES.get(step, '')}{beside}")
    return "\n".join(lines)


def _sweep_note(statuses: dict[str, dict]) -> str:
    reused = [v for v in statuses.values() if v["status"] == "skipped"]
    verified = [v["verified"] for v in reused if v.get("verified")]
    ran = sum(v["status"] == "ok" for v in statuses.values())
    failed = sum(v["status"] in ("failed", "not run") for v in statuses.values())
    passes = sum(len(v["passes"]) for v in verified), sum(v["of"] for v in verified)
    deferred = sum(bool(v.get("deferred")) for v in reused)
    return (
        f"{len(statuses)} runs: {len(reused)} reused ({len(verified)} verified, {passes[0]} of {passes[1]} passes "
        f"recomputed and equal"
        + (f"; {deferred} bf16 run(s) not recomputed: no bf16 units on this CPU" if deferred else "")
        + f"), {ran} computed"
        + (f", {failed} failed" if failed else "")
    )


def _needs_training(a: argparse.Namespace) -> bool:
    """Whether a model is trained in this job: ``--retrain``, or a committed checkpoint is missing."""
    return a.retrain or not all(ckpt.is_file() for ckpt, _ in MODELS.values())


def _data_step(a: argparse.Namespace, overrides: dict | None) -> None:
    """Step ``data``: the embedded test set (and the training split only when a model is trained: the committed
    checkpoints are reused) and the coil-count test sets."""
    from concurrent.futures import ThreadPoolExecutor

    splits = ("train", "test") if _needs_training(a) else ("test",)
    # the coil-count sets beside the test set (measured 2026-12-02: 25 -> 19 s)
    with ThreadPoolExecutor(2 if a.jobs > 1 else 1) as pool:
        main, coils = pool.submit(make_data, splits), pool.submit(make_coil_data)
        made = main.result() + coils.result()  # every volume depends on (seed, index) only: the same bytes
    NOTES["data"] = f"generated {', '.join(made)}" if made else "embedded data present (seeded; reused)"


def _train_step(a: argparse.Namespace, overrides: dict | None) -> None:
    """Step ``train``: each model whose checkpoint is missing (all with ``--retrain``), in the committed models'
    two phases (models/README.md): the cosine schedule, then :data:`PLATEAU` from its checkpoint."""
    from advmri.models.train import train

    NOTES["train"] = "committed checkpoints reused (sha256 checked when loaded)"
    if _needs_training(a):
        make_data(("train",))
    for kind, (ckpt, steps) in MODELS.items():
        if a.retrain or not ckpt.is_file():
            NOTES["train"] = "trained " + ", ".join(k for k, (c, _) in MODELS.items() if a.retrain or not c.is_file())
            train(kind, "small", DATA / "train", ckpt, steps=steps, device=a.device, force=a.retrain)
            train(
                kind,
                "small",
                DATA / "train",
                ckpt,
                steps=PLATEAU["max_steps"],
                lr=PLATEAU["lr"],
                init=ckpt,
                plateau=PLATEAU["tol"],
                precision=PLATEAU["precision"],
                device=a.device,
                force=True,
            )


def _notebooks_step(a: argparse.Namespace, overrides: dict | None) -> None:
    """Step ``notebooks``: execute 01_data, 02_models and 08_your_model (``--jobs`` at a time); the quality table ->
    ``paper/tables/quality.md``."""
    out = ROOT / "results" / "notebooks"
    quality = dict(data_dir=str(DATA / "test"), out_table=str(ROOT / "results" / "model_quality.csv"), fresh=a.fresh)
    card = dict(data_dir=str(DATA / "test"), out_dir=str(ROOT / "results" / "cards" / "tiny_cnn"))
    notebooks = {"02_models": quality, "08_your_model": card, "01_data": {"data_dir": str(DATA / "test")}}
    # independent of the attack runs (08: the benchmark of a user's model on the data); in the background (BESIDE)
    # without bars, which would garble the sweep's lines
    _nbs(notebooks, out, a.jobs, bars=not getattr(a, "background", False))
    rep = ROOT / "results" / "model_quality.report.json"
    q = json.loads(rep.read_text()) if rep.is_file() else {}
    NOTES["notebooks"] = f"01, 02, 08 executed; quality table {q.get('status', '?')}" + (
        f" ({q['verified_rows']} rows recomputed and equal)"
        if q.get("verified_rows")
        else f" in {q['seconds']:.0f} s"
        if q.get("seconds")
        else ""
    )
    q = pd.read_csv(ROOT / "results" / "model_quality.csv")
    tables = ROOT / "paper" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    (tables / "quality.md").write_text(q.to_markdown(index=False, floatfmt=".4f") + "\n")


def _verify_plan(a: argparse.Namespace, overrides: dict | None) -> list[Path] | None:
    """With ``--verify-runs cover`` (the default): the complete runs the main job recomputes a pass of, chosen once
    across all :data:`SWEEPS` (the cheapest that together exercise every feature of every run and every sweep,
    :func:`advmri.experiments.verify.choose_cover`); else None (each sweep chooses by ``--verify-runs``)."""
    from advmri.experiments.sweep import committed_runs, load_sweep
    from advmri.experiments.verify import choose_cover

    if a.fresh or a.verify_runs != "cover" or str(a.verify).strip() == "0":
        return None
    folders = [
        r.folder
        for s in SWEEPS
        for r in committed_runs(load_sweep(ROOT / "sweeps" / f"{s}.yaml", ROOT / "results", overrides)[1])
    ]
    return choose_cover(folders)


def _verify_planned(plan: list[Path], a: argparse.Namespace) -> dict[str, dict]:
    """Recompute a pass of each run of ``plan`` in one pool of ``--jobs`` processes, the longest first (across the
    sweeps, so that no process idles at the end of each); returns the reports by resolved folder. Each sweep then
    reuses a report while its run's table keeps the verified sha256 (checked with the sweep's lock held)."""
    from advmri.experiments.verify import defer_emulated, parse_passes, verify_many

    todo, deferred = defer_emulated(plan)
    sweeps = sorted({f.parent.name for f in plan})
    print(
        f"sweep: verifying {len(todo)} reused runs chosen across {len(sweeps)} sweeps (the cheapest that together "
        f"exercise every feature; --verify-runs paths: one per code path, all: every run), {a.jobs} at a time"
        + (f"; {len(deferred)} bf16 run(s) deferred: no bf16 units on this CPU" if deferred else ""),
        flush=True,
    )
    t0 = time.perf_counter()
    reps = verify_many(todo, parse_passes(a.verify), 0, a.jobs)
    print(f"sweep: {len(reps)} runs verified in {time.perf_counter() - t0:.0f} s", flush=True)
    return {str(f.resolve()): reps[f.name] for f in todo if f.name in reps}


def _sweep_step(a: argparse.Namespace, overrides: dict | None) -> None:
    """Step ``sweep``: run every sweep of :data:`SWEEPS` (with ``--fresh``: asked once, before anything is
    recomputed)."""
    from advmri.experiments.sweep import committed_runs, confirm_fresh, load_sweep, run_sweep

    if a.fresh:  # asked once, before anything is recomputed
        n = sum(
            len(committed_runs(load_sweep(ROOT / "sweeps" / f"{s}.yaml", ROOT / "results", overrides)[1]))
            for s in SWEEPS
        )
        confirm_fresh(n, ROOT / "results", a.yes)
    plan = _verify_plan(a, overrides)
    verified = _verify_planned(plan, a) if plan else None
    statuses: dict[str, dict] = {}
    for sweep in SWEEPS:
        cfg = ROOT / "sweeps" / f"{sweep}.yaml"
        st = run_sweep(
            cfg,
            jobs=a.jobs,
            results=ROOT / "results",
            overrides=overrides,
            verify=0 if a.fresh else a.verify,
            allow_dirty=a.allow_dirty,
            fresh=a.fresh,
            verify_runs=a.verify_runs,
            verify_plan=plan,
            verified=verified,
        )
        statuses.update(st)
        if any(v["status"] == "failed" for v in st.values()):
            print(f"some runs of {sweep} failed; the analysis uses the completed ones", file=sys.stderr)
    NOTES["sweep"] = _sweep_note(statuses)


def _analysis_step(a: argparse.Namespace, overrides: dict | None) -> None:
    """Step ``analysis``: execute 05_analysis and 07_beyond -> ``paper/figures``, ``paper/tables``."""
    from advmri.experiments.sweep import load_sweep

    _, runs = load_sweep(ROOT / "sweeps" / "paper.yaml", ROOT / "results", overrides)
    _, beyond = load_sweep(ROOT / "sweeps" / "beyond.yaml", ROOT / "results", overrides)
    figures, tables = str(ROOT / "paper" / "figures"), str(ROOT / "paper" / "tables")
    notebooks: dict[str, dict] = {
        "05_analysis": dict(
            sweep_dir=str(ROOT / "results" / "paper"),
            run_ids=[r.id for r in runs],
            figures_dir=figures,
            tables_dir=tables,
            interpolation_dir=str(ROOT / "results" / "interpolation"),
            checks_dir=str(ROOT / "results" / "checks"),
        ),
        "07_beyond": dict(
            beyond_dir=str(ROOT / "results" / "beyond"),
            paper_dir=str(ROOT / "results" / "paper"),
            run_ids=[r.id for r in beyond],
            paper_run_ids=[r.id for r in runs],
            figures_dir=figures,
            tables_dir=tables,
        ),
    }
    _nbs(notebooks, ROOT / "results" / "notebooks", a.jobs)  # independent: they write disjoint files
    NOTES["analysis"] = "05, 07 executed (tables and figures from the verified runs)"


def _paper_step(a: argparse.Namespace, overrides: dict | None) -> None:
    """Step ``paper``: ``paper/build/paper.md`` and the article (HTML book, + PDF where chromium is installed)."""
    import yaml

    from advmri.report.paper import build

    spec = yaml.safe_load((ROOT / "sweeps" / "paper.yaml").read_text())
    accs = ", ".join(f"{x}x" for x in spec["grid"]["acceleration"])
    setup = (
        "Synthetic data: `small` preset (8 coils, 256x160 k-space, 128x128 recon, 10 slices), "
        "20 training volumes (seed 0, every 5th validates), 28 held-out test volumes (seed 1, 93 located boxes). "
        "Models: fastMRI VarNet (6 cascades, 8 channels) and U-Net (24 channels, 4 pools), "
        f"trained by `python -m advmri.models.train`. Attacks at {accs} (fastMRI random masks; 8x: centre "
        f"fraction 0.04, 4x: 0.08), {_boxes(spec['common']['max_targets'])} per run, "
        "the same boxes for every model and setting (`sweeps/paper.yaml`)."
    )
    md = build(setup_text=setup)
    print("   " + ", ".join(f"{k} {Path(v).relative_to(ROOT)}" for k, v in md.items()), flush=True)
    from advmri.report.book import build_book

    out = build_book(setup_text=setup)  # the article: HTML book (+ PDF where chromium is installed)
    print("   book: " + ", ".join(f"{k} {v.relative_to(ROOT)}" for k, v in out.items()), flush=True)
    NOTES["paper"] = "article built: " + ", ".join(f"{k} {v.relative_to(ROOT)}" for k, v in out.items())


# step -> its function ``(args, overrides) -> None``; each records what it did in NOTES[step]
_STEP_FUNCS = {
    "data": _data_step,
    "train": _train_step,
    "notebooks": _notebooks_step,
    "sweep": _sweep_step,
    "analysis": _analysis_step,
    "paper": _paper_step,
}


# a step that runs in the background beside the following ones (when --jobs > 1), and the step it must finish before:
# the notebooks 01, 02 and 08 need the data only, and the sweep's verification leaves cores idle between its runs
BESIDE = {"notebooks": "analysis"}


def _steps(a: argparse.Namespace, overrides: dict | None, times: dict[str, float]) -> None:
    """Run the steps ``a.start`` .. ``a.until`` in order (those of :data:`BESIDE` in the background until the step
    they must precede); each one's seconds go to ``times``."""
    from concurrent.futures import Future, ThreadPoolExecutor

    todo = STEPS[STEPS.index(a.start) : STEPS.index(a.until) + 1]
    background: dict[str, Future] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="advmri-step") as pool:
        try:
            for step in todo:
                for other in [o for o in background if BESIDE[o] == step]:
                    _join(other, background.pop(other), times)
                if a.jobs > 1 and BESIDE.get(step) in todo:
                    print(f"== {step} (in the background, beside the steps until {BESIDE[step]})", flush=True)
                    behind = argparse.Namespace(**vars(a), background=True)
                    background[step] = pool.submit(_timed, step, behind, overrides)
                    continue
                print(f"== {step}", flush=True)
                times[step] = _timed(step, a, overrides)
            for other in list(background):
                _join(other, background.pop(other), times)
        finally:
            for fut in background.values():  # a step failed or was interrupted: the background one stops with it
                fut.cancel()


def _timed(step: str, a: argparse.Namespace, overrides: dict | None) -> float:
    """Run one step; its seconds (also printed)."""
    t0 = time.perf_counter()
    _STEP_FUNCS[step](a, overrides)
    sec = time.perf_counter() - t0
    print(f"   {step}: {sec:.0f} s", flush=True)
    return sec


def _join(step: str, fut, times: dict[str, float]) -> None:
    """Wait for a background step (its exception is raised here)."""
    if not fut.done():
        print(f"   waiting for {step} (in the background)", flush=True)
    times[step] = fut.result()
    BACKGROUND.add(step)


if __name__ == "__main__":
    sys.exit(main(None))
