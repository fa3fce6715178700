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
# # 3 · Targeted adversarial k-space noise
# Projected gradient ascent on complex k-space noise with a per-coil budget
# $\|z_i\|_2 \le \epsilon \|k_i\|_2$, only on acquired columns, undersampled *after* adding the
# noise, maximising the MSE to the clean target inside a fastMRI+ box. The baseline is random Gaussian
# noise on the columns the mask samples, with exactly the adversarial noise's per-coil norms there: both
# deliver the same energy to the network (each row records both energy fractions on the sampled columns).

# %% tags=["parameters"]
model = "models/varnet-small.pt"  # checkpoint, or official:varnet[:PATH] / official:unet[:PATH]
data_dir = "data/synthetic/small/test"
annotations = None
acceleration = 8
eps = [0.0, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025]
steps = 10
step_size = 0.5
loss = "mse"
restarts = 0  # extra random starts; the strongest is kept
momentum = 0.0  # MI-FGSM momentum on the normalised gradients (0: plain PGA)
mask_draws = 0  # 0: the attacker knows the mask (paper) | N: expectation over N random masks per step
target = "clean"  # clean: away from the clean target | healthy: toward the lesion-free twin (erasure) | lesion: the twin attacked toward the lesion (hallucination)
update = "ours"  # ours | reference (the authors' update: global normalisation, ends inside the budget)
random_draws = 5
max_targets = 8
chunk = None  # items per forward pass; None: 4 on CPU, measured from memory on CUDA (advmri.util.perf)
precision = "fp32"  # fp32 | bf16 (autocast of the networks' convolution blocks)
shard = 0  # attack the shard-th of the shards contiguous parts of the selected boxes (sweeps set both)
shards = 1
threads = 2  # CPU threads, pinned for the run and recorded (per-box results depend on it)
device = "cpu"
seed = 0
out = "results/noise.csv"  # the run's result table
smoke = False

# %%
import numpy as np

from advmri.experiments import recons
from advmri.data.dataset import describe_report
from advmri.report.figures import image_grid, metric_curves, zoom
from advmri.app.live import LiveAttack
from advmri.experiments.run import AttackRun, check_table_path, execute, write_results
from advmri.experiments.smoke import tiny_setup
from advmri.app.widgets import eps_explorer

if smoke:  # seeded tiny data and model, shared by every smoke run of this host (advmri.experiments.smoke)
    (tiny, data_dir), eps, steps, random_draws, max_targets = tiny_setup("varnet"), [0.0, 0.01], 2, 1, 2
    model = model if str(model).startswith("classical:") else tiny  # classical methods need no weights
run = AttackRun.from_params(  # validates every parameter (one-line errors naming it)
    "noise", model=model, data_dir=data_dir, annotations=annotations, acceleration=acceleration, eps=eps, steps=steps,
    step_size=step_size, loss=loss, restarts=restarts, momentum=momentum, mask_draws=mask_draws, target=target, update=update, random_draws=random_draws, max_targets=max_targets,
    chunk=chunk, device=device, seed=seed, precision=precision, shard=shard, shards=shards,
    threads=threads)
table = check_table_path(out)  # before the attack: a bad or unwritable path fails now, not after it
df, extras = execute(run, keep_images=True)
write_results(df, table, run, extras)  # table and metadata together or not at all
store = recons.save(recons.store_path(table), extras, run.as_dict(), df.model.iloc[0], df.config.iloc[0],
                    df.code_version.iloc[0])
print(f"{len(df)} rows in {extras['seconds']:.1f} s -> {table}; reconstructions -> {store}")
print("annotations:", describe_report(extras["annotations"]))

# %% [markdown]
# ## Box SSIM / PSNR vs eps: adversarial (solid) vs random (dashed), mean and 95% interval over boxes

# %%
metric_curves(df, "box_ssim", title="box SSIM").show()
metric_curves(df, "box_psnr", title="box PSNR (dB)").show()
df.groupby(["kind", "param"])[["box_ssim", "box_psnr", "img_ssim", "lesion_retained"]].mean()

# %% [markdown]
# ## An example: clean, random and adversarial noise at the largest eps, with a zoom on the box

# %%
t0 = extras["targets"][0]
s = extras["samples"][0]
e_max, e0 = max(eps), min(eps)
panels = {"target": s.target, f"recon eps={e0}": extras["images"][(t0, e0, "adversarial")],
          f"random eps={e_max}": extras["images"].get((t0, e_max, "random")),  # none with random_draws = 0
          f"adversarial eps={e_max}": extras["images"][(t0, e_max, "adversarial")]}
panels = {k: v.numpy() for k, v in panels.items() if v is not None}
image_grid(list(panels.values()), list(panels), boxes=[s.box] * len(panels), zmax=float(s.target.max()),
           height=330).show()
image_grid([zoom(x, s.box) for x in panels.values()], [f"{k} (box)" for k in panels], zmax=float(s.target.max()),
           height=260).show()

# %% [markdown]
# ## Explorer: move the eps slider (this run's reconstructions are stored, so it responds at once)
# "compute this one" attacks the selected box live at any eps. Every run of a sweep:
# `notebooks/06_explorer` (or `python -m advmri.app.explore` for a standalone app).

# %%
eps_explorer([recons.load(store)], live=lambda r: LiveAttack(r, device))
