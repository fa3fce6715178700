# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5 · Analysis: the paper's figures and tables from a sweep
# Reads every result table of a sweep, summarises with 95% intervals from resampling *volumes* (boxes of
# one volume are not independent; random draws averaged per box first), tests the paper's primary claims
# as one Holm-corrected family (`advmri.report.claims`; everything else is exploratory), breaks results down by
# label and box size, and writes stamped figures and tables.

# %% tags=["parameters"]
sweep_dir = "results/paper"
run_ids = None  # runs to analyse (the pipeline passes its sweep's); None: every completed run in sweep_dir
figures_dir = "results/analysis/figures"  # the main job passes paper/figures
tables_dir = "results/analysis/tables"  # the main job passes paper/tables
interpolation_dir = "results/interpolation"  # sweeps/interpolation.yaml (skipped when it has no runs)
checks_dir = "results/checks"  # sweeps/checks.yaml: budget law, precision, steps (skipped when it has no runs)
smoke = False

# %%
import tempfile
from pathlib import Path

from advmri.report.analysis import collect, headline, write_interpolation, write_outputs
from advmri.report.figures import metric_curves

if smoke:
    from advmri.experiments.sweep import run_sweep

    tmp = Path(tempfile.mkdtemp())
    run_sweep("sweeps/smoke.yaml", results=tmp, log=lambda *a: None)
    sweep_dir, figures_dir, tables_dir, interpolation_dir = tmp / "smoke", tmp / "figures", tmp / "tables", tmp / "none"
    checks_dir = tmp / "none"
df, statuses = collect(sweep_dir, run_ids)
print(f"{len(df)} rows from {df.sweep_run.nunique()} runs; statuses:", {s['run_id']: s['status'] for s in statuses})

# %%
headline(df)

# %%
for attack in ("noise", "rotation"):
    d = df[df.attack == attack]
    if len(d):
        metric_curves(d, "box_ssim", x_title="eps" if attack == "noise" else "angle bound (deg)",
                      title=f"{attack}: box SSIM").show()

# %%
written = write_outputs(df, Path(sweep_dir).name, figures_dir, tables_dir, formats=() if smoke else ("png", "svg"))
for p in written["tables"]:
    print(p)
    print(Path(p).read_text()[:1500])

# %% [markdown]
# ## How much the rotation's interpolation matters
# The same rotation attack with the antialiased resizes and with the exact Fourier rotation
# (`sweeps/interpolation.yaml`), beside the reference interpolation of the main sweep, on the same boxes.

# %%
p = write_interpolation(df, interpolation_dir, tables_dir)
print(p.read_text() if p else f"{interpolation_dir}: no completed interpolation runs")

# %% [markdown]
# ## The primary claims, and the checks a reviewer asks for
# One family of claims, declared in `advmri.report.claims` (adversarial vs random noise at eps 0.01, worst vs random
# rotation at 5 deg, VarNet vs U-Net under noise), Holm-corrected. Then, from `sweeps/checks.yaml`: the
# attained budget of the authors' update against the coil count, the VarNet in float32 against bf16, and
# steps x step size.

# %%
from advmri.report.checks import write_checks
from advmri.report.claims import primary_claims
from advmri.util.paths import project_path

primary_claims(df)

# %%
if (project_path(checks_dir)).is_dir() and any(project_path(checks_dir).glob("*/status.json")):
    for p in write_checks(checks_dir, df, tables_dir, figures_dir, formats=() if smoke else ("png",))["tables"]:
        print(Path(p).read_text())
else:
    print(f"{checks_dir}: no completed checks runs")
