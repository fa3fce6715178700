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
# # 8 · Your model: a robustness card in one call
# advmri attacks any reconstruction model you can build in Python. Point it at a file and a zero-argument
# factory, `path/to/my_model.py:make`, returning a `torch.nn.Module` with one of fastMRI's two signatures:
#
# * **k-space** (VarNet convention): `forward(masked_kspace, mask) -> image`, `masked_kspace`
#   `(batch, coils, rows, cols, 2)` float32, `mask` `(batch, 1, 1, cols, 1)` bool, a `(batch, h, w)` magnitude
#   image out (centre-cropped by advmri to the target size);
# * **image** (U-Net convention): `forward(x) -> x'` on the zero-filled RSS image `(batch, 1, H, W)`, which
#   advmri normalises (mean/std of each image, clamped to ±6) and un-normalises around your model.
#
# The kind is detected from `forward`'s arguments (or given: `--model-kind`). This notebook benchmarks the
# example `examples/tiny_cnn.py:make`, a three-layer residual CNN trained for a minute
# (`examples/train_tiny_cnn.py`), exactly as the command line would:
#
# ```bash
# advmri benchmark --model examples/tiny_cnn.py:make --data data/synthetic/small/test --smoke --out card/
# ```

# %% tags=["parameters"]
model = "examples/tiny_cnn.py:make"  # any model spec: file.py:factory, a checkpoint, classical:<method>
data_dir = "data/synthetic/small/test"  # the embedded test set (python -m advmri.app.pipeline --until data)
out_dir = "results/cards/tiny_cnn"  # card.json, card.md, card.html, examples/
quick = True  # the benchmark's smoke profile (2 boxes, seconds); False: the standard profile (8 boxes, minutes)
save_examples = 2  # the worst boxes saved as images
smoke = False  # seconds-long run on one tiny synthetic volume (tests)

# %%
import tempfile
from pathlib import Path

from IPython.display import Image, Markdown, display

from advmri.app.benchmark import BenchmarkConfig, benchmark, effective
from advmri.report.card import audit_line, checks_table, figure, headline_table, reference_table, write_card

if smoke:
    from advmri.experiments.smoke import tiny_setup

    _, data_dir = tiny_setup("varnet")
    out_dir = tempfile.mkdtemp()
cfg = effective(BenchmarkConfig(model=model, data=data_dir, out=out_dir, smoke=quick or smoke,
                                save_examples=save_examples, threads=1, force=True))
card, extras = benchmark(cfg, keep_images=save_examples > 0)
files = write_card(Path(out_dir), card, extras, save_examples)
print(f"{card['model']['name']}: {card['model']['parameters']:,} parameters, {card['seconds']:.0f} s -> {files['json']}")

# %% [markdown]
# ## The headline
# Box PSNR of the clean reconstruction, under adversarial k-space noise at the card's budget, under the random
# control that delivers the same energy to the network, and under the worst rotation within the largest bound.
# The intervals resample **volumes**; with the quick profile's two boxes they are wide or undefined: read them
# as a smoke test of your model's interface, and run the standard profile (`quick = False`) for numbers.

# %%
display(headline_table(card))

# %% [markdown]
# ## Checks for gradient masking
# A robust number is only as good as the attack behind it. The card checks for randomised outputs and for input
# gradients that are missing, zero or do not predict the loss, compares the white-box attack with a transfer attack
# and with the random control, and runs an adaptive evaluation (EOT, BPDA, transfer, a gradient-free search) beside
# the naive one (`advmri.experiments.audit`).

# %%
display(Markdown(audit_line(card)), checks_table(card))

# %% [markdown]
# ## Against advmri's own models
# The committed leaderboard (`results/leaderboard/`, standard profile, 8x) for comparison. A smoke card and a
# standard card attack different boxes, so compare them only after a standard run.

# %%
display(reference_table(card))

# %% [markdown]
# ## The curves
# Box PSNR and SSIM against the noise budget and the rotation bound, adversarial (red) against random (blue).

# %%
figure(card).show()

# %% [markdown]
# ## The worst boxes
# Target, clean, adversarial and random reconstruction of the boxes with the lowest adversarial box PSNR.

# %%
for p in sorted((Path(out_dir) / "examples").glob("*.png")):
    display(Markdown(f"`{p.name}`"), Image(filename=str(p)))

# %% [markdown]
# ## Composing threat models in Python
# The card's threat models are objects (`advmri.experiments.threats`): perturb a batch yourself, for any model advmri
# can load.

# %%
import torch

from advmri.attacks.common import box_scores, make_batch
from advmri.attacks.noise import coil_norms
from advmri.data.dataset import AnnotatedSlices
from advmri.experiments.run import load_model
from advmri.experiments.threats import KspaceNoise, Rotation

net = load_model(model)
batch = make_batch([AnnotatedSlices(data_dir, acceleration=8)[0]])
noise = KspaceNoise(eps=(0.0, 0.01), steps=3)
z = noise.perturb(net, batch, eps=0.01)  # (batch, coils, rows, cols) complex
ratio = (coil_norms(z) / coil_norms(batch.kspace)).max().item()
angle, _ = Rotation(bounds=(0.0, 2.0), max_angle=2.0, angle_step=1.0).perturb(net, batch, 2.0)
print(f"largest per-coil ||z_i|| / ||k_i|| = {ratio:.4f} (budget 0.01); worst angle within 2 deg: {angle.item():+.1f}")
with torch.no_grad():
    clean = box_scores(noise.reconstruct(net, batch, torch.zeros_like(z)), batch)["box_psnr"].item()
    attacked = box_scores(noise.reconstruct(net, batch, z), batch)["box_psnr"].item()
print(f"box PSNR {clean:.2f} dB clean, {attacked:.2f} dB under this noise (3 PGA steps)")
