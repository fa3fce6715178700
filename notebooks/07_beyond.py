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
# # 7 · Beyond the paper: erasure and hallucination, classical reconstructions, stronger attacks
# The paper measures box SSIM / MSE only. Three questions it could not answer, computed by
# `sweeps/beyond.yaml` (8x, the embedded default) and read here beside the paper sweep:
#
# 1. **Does the attack erase the lesion, or make one up?** Our synthetic data has the lesion-free twin of
#    every slice. An *erasure* attack (`target: healthy`) pulls the box toward the twin; a *hallucination*
#    attack (`target: lesion`) starts from the lesion-free twin and pulls toward the lesioned image. A box
#    counts as erased (hallucinated) when its reconstruction is closer, in box MSE, to the twin than to the
#    truth (`healthy_closer`). The same rate under random noise of equal per-coil norms is the baseline.
# 2. **Are networks more fragile than a classical reconstruction at equal budget?** CG-SENSE and
#    l1-wavelet compressed sensing (`advmri.models.classical`, fixed iterations, differentiable) under the
#    paper's own attacks.
# 3. **Do the conclusions survive stronger attacks?** Restarts, momentum, and an attacker that does not
#    know the mask (expectation over random masks), each against the default 10-step PGA on the same boxes.

# %% tags=["parameters"]
beyond_dir = "results/beyond"  # sweeps/beyond.yaml
paper_dir = "results/paper"  # sweeps/paper.yaml: the default PGA and the networks' drops on the same boxes
run_ids = None  # beyond runs to use (the pipeline passes its sweep's); None: every completed run
paper_run_ids = None  # paper runs to use; None: every completed run
figures_dir = "results/analysis/figures"  # the main job passes paper/figures
tables_dir = "results/analysis/tables"  # the main job passes paper/tables
smoke = False

# %%
import tempfile
from pathlib import Path

import pandas as pd

from advmri.report.analysis import collect, stamp, twin_rates
from advmri.report.beyond import attack_drops, classical_comparison, drops_figure, erasure_figure, stronger_deltas, write_beyond

if smoke:
    from advmri.experiments.sweep import run_sweep

    tmp = Path(tempfile.mkdtemp())
    run_sweep("sweeps/smoke_beyond.yaml", jobs=2, results=tmp, log=lambda *a: None)
    beyond_dir = paper_dir = tmp / "smoke_beyond"
    figures_dir, tables_dir = tmp / "figures", tmp / "tables"
beyond, _ = collect(beyond_dir, run_ids)
frames = [beyond]
if Path(paper_dir) != Path(beyond_dir):
    paper, _ = collect(paper_dir, paper_run_ids)
    frames.append(paper[paper.acceleration.isin(beyond.acceleration.unique())])
df = pd.concat(frames, ignore_index=True)
st = stamp(df, "beyond+paper")
st["sweeps"] = sorted({Path(beyond_dir).name, Path(paper_dir).name})
print(f"{len(beyond)} rows from {beyond.sweep_run.nunique()} beyond runs; {len(df)} rows with the paper sweep")

# %% [markdown]
# ## 1 · Erasure and hallucination
# Fraction of boxes closer to the twin than to the truth. "paper attack" rows are the paper's own
# attack (away from the clean target) scored the same way: does maximising the box error already erase?

# %%
tw = df[df.variant == "PGA"]
rates = twin_rates(tw)
erasure_figure(rates, "noise").show()
if ((rates.attack == "rotation") & rates.target.isin(["healthy", "lesion"])).any():
    erasure_figure(rates, "rotation").show()
rates.round(3)

# %% [markdown]
# ## 2 · Networks vs classical reconstructions at equal budget
# The drop of box SSIM from each method's own clean reconstruction, every method on the boxes of the
# classical run (paired per box; "minus_classical" < 0: the method loses more than the classical one).

# %%
comp = classical_comparison(df)
for attack in ("noise", "rotation"):
    d = comp[(comp.attack == attack) & (comp.classical_boxes == "cg-sense")] if len(comp) else comp
    if len(d):
        drops_figure(d.rename(columns={"method": "model"}), attack).show()
comp.round(3)

# %%
attack_drops(df).round(3)

# %% [markdown]
# ## 3 · Stronger attacks at the same budget
# Paired per box against the default PGA of the paper sweep (same seed, threads, precision and boxes):
# "delta" < 0 means the stronger attack lowered box SSIM further.

# %%
stronger_deltas(df).round(3)

# %%
written = write_beyond(df, tables_dir, figures_dir, st, formats=() if smoke else ("png",))
for p in written["tables"]:
    print(p)
