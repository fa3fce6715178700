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
# # 6 · Explorer: what adversarial k-space noise does inside each pathology box
# Every noise run of the paper's sweep stored its reconstructions (a window around each box,
# for every eps, adversarial and the paired control with its per-coil energy on the sampled columns), so this
# opens at once: pick a model and a box, move the **stored eps** slider. Each box keeps one
# intensity range for the images and one for the differences, whatever eps you choose.
# **compute this one** runs the attack live on the selected box at any eps on the **live eps**
# slider (seconds on the small models). Standalone app: `.venv/bin/python -m advmri.app.explore`.

# %% tags=["parameters"]
sweep_dir = "results/paper"  # a sweep folder; its completed noise runs' *.recons.h5 are shown
stores = None  # or a list of .recons.h5 files (overrides sweep_dir)
device = "cpu"  # for the live attack
smoke = False  # True: a tiny, seconds-long noise run of its own

# %%
import time

from advmri.experiments import recons
from advmri.app.live import LiveAttack
from advmri.experiments.smoke import noise_store
from advmri.app.widgets import eps_explorer

t0 = time.perf_counter()
paths = [noise_store()] if smoke else (stores or recons.find(sweep_dir))
if not paths:
    raise FileNotFoundError(f"{sweep_dir}: no noise run with stored reconstructions; run the main job first")
runs = recons.load_all(paths)  # a damaged store is named and skipped; the others are shown
explorer = eps_explorer(runs, live=lambda r: LiveAttack(r, device))
print(f"{len(runs)} runs, {sum(len(r.targets) for r in runs)} boxes, loaded in {time.perf_counter() - t0:.2f} s")
explorer
