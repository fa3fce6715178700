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
# # 4 · Adversarial rotation
# Rotate the complex coil images by a small angle, re-form and undersample k-space,
# reconstruct, rotate back, and score inside the box. The worst case over the angle grid
# within each bound $|\theta| \le b$ is compared with random angles in the same bound.

# %% tags=["parameters"]
model = "models/varnet-small.pt"
data_dir = "data/synthetic/small/test"
annotations = None
acceleration = 8
max_angle = 4.9
angle_step = 0.1
bounds = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
interpolation = "reference"  # reference (as the authors ran it) | antialias | fourier (exact: 0 deg is the identity)
target = "clean"  # clean: worst angle by box MSE | healthy: the angle closest to the lesion-free twin (erasure) | lesion: the twin rotated toward the lesion (hallucination)
random_draws = 5
max_targets = 8
chunk = None  # items per forward pass; None: 4 on CPU, measured from memory on CUDA (advmri.util.perf)
precision = "fp32"  # fp32 | bf16 (autocast of the networks' convolution blocks)
shard = 0  # attack the shard-th of the shards contiguous parts of the selected boxes (sweeps set both)
shards = 1
threads = 2  # CPU threads, pinned for the run and recorded (per-box results depend on it)
device = "cpu"
seed = 0
out = "results/rotation.csv"
smoke = False

# %%
from advmri.data.dataset import describe_report
from advmri.report.figures import angle_profile, image_grid, metric_curves, zoom
from advmri.experiments.run import AttackRun, check_table_path, execute, write_results
from advmri.experiments.smoke import tiny_setup

if smoke:  # seeded tiny data and model, shared by every smoke run of this host (advmri.experiments.smoke)
    (tiny, data_dir), max_angle, angle_step, bounds, random_draws, max_targets = (
        tiny_setup("unet"), 1.0, 0.5, [0.0, 1.0], 1, 1)
    model = model if str(model).startswith("classical:") else tiny  # classical methods need no weights
run = AttackRun.from_params(  # validates every parameter (one-line errors naming it)
    "rotation", model=model, data_dir=data_dir, annotations=annotations, acceleration=acceleration,
    max_angle=max_angle, angle_step=angle_step, bounds=bounds, interpolation=interpolation, target=target,
    random_draws=random_draws, max_targets=max_targets,
    chunk=chunk, device=device, seed=seed, precision=precision, shard=shard, shards=shards,
    threads=threads)
table = check_table_path(out)  # before the attack: a bad or unwritable path fails now, not after it
df, extras = execute(run, keep_images=True)
write_results(df, table, run, extras)  # table and metadata together or not at all
print(f"{len(df)} rows in {extras['seconds']:.1f} s -> {table}; annotations: {describe_report(extras['annotations'])}")

# %% [markdown]
# ## Worst-case box SSIM vs angle bound (solid) and random angles (dashed)

# %%
metric_curves(df, "box_ssim", x_title="angle bound (deg)", title="box SSIM").show()
df.groupby(["kind", "param"])[["box_ssim", "box_psnr", "angle"]].mean()

# %% [markdown]
# ## Box SSIM as a function of the angle, for the first target

# %%
t0 = extras["targets"][0]
angle_profile(extras["angles"], extras["images"]["_scores"][t0]["box_ssim"]).show()

# %%
s = extras["samples"][0]
b = max(bounds)
worst = extras["images"][(t0, b, "adversarial")]
image_grid([s.target.numpy(), worst.numpy(), zoom(s.target.numpy(), s.box), zoom(worst.numpy(), s.box)],
           ["target", f"worst rotation |theta|<={b}", "target (box)", "worst (box)"],
           zmax=float(s.target.max()), height=300).show()
