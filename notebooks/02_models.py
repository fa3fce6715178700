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
# # 2 · Models: E2E-VarNet and UNet trained on the embedded data
# Training curves, example reconstructions at 4x and 8x, and the quality table on held-out volumes.

# %% tags=["parameters"]
varnet = "models/varnet-small.pt"  # advmri checkpoint, or official:varnet[:PATH]
unet = "models/unet-small.pt"
classical = ["classical:cg-sense", "classical:l1-wavelet"]  # classical baselines in the quality table (advmri.models.classical)
data_dir = "data/synthetic/small/test"
max_slices = 0  # 0: all slices (and all boxes) of the held-out volumes
out_table = "results/model_quality.csv"
quality_dir = "results/quality"  # the recorded quality table (advmri.experiments.quality): reused when a seeded sample verifies
fresh = False  # recompute the quality table even when the record verifies
verify = 1  # sampled slices and boxes (each with its batch of 8) recomputed for every method before reuse (0: digests only)
smoke = False

# %%
import json
import tempfile
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import torch

from advmri.data.dataset import AnnotatedSlices
from advmri.data.synth import generate_dataset
from advmri.experiments.evaluate import box_quality, quality_table, summary
from advmri.experiments.quality import quality_tables
from advmri.report.figures import image_grid
from advmri.models import build, load_checkpoint, zero_filled
from advmri.util.paths import project_path
from advmri.experiments.run import load_model

if smoke:
    data_dir = tempfile.mkdtemp()
    generate_dataset("tiny", 1, seed=0, out=data_dir, progress=False)
    models = {k: build(k, "tiny").freeze() for k in ("unet", "varnet")}
    histories = {}
    max_slices, out_table = 2, str(Path(tempfile.mkdtemp()) / "q.csv")
else:
    models = {"unet": load_model(unet), "varnet": load_model(varnet)}
    histories = {k: load_checkpoint(p)[1].get("history", {}) for k, p in (("unet", unet), ("varnet", varnet))
                 if not p.startswith("official:")}

# %% [markdown]
# ## Training curves
# Both models were first trained with a cosine schedule (VarNet 700, U-Net 900 steps), then continued
# at a constant learning rate (5e-4, bfloat16 autocast of the convolutions) until the validation SSIM
# (8x, held-out training volumes) gained less than 0.005 over the last doubling of steps
# (`python -m advmri.models.train --init ... --plateau 0.005`; `models/README.md`). The dotted line marks where
# the continuation starts; the table lists the gain over each doubling that was checked.

# %%
fig = go.Figure()
for k, h in histories.items():
    if h:
        fig.add_trace(go.Scatter(x=h["step"], y=h["loss"], name=f"{k} train loss", opacity=0.5))
        fig.add_trace(go.Scatter(x=h["val_step"], y=h["val_ssim"], name=f"{k} val SSIM (8x)", yaxis="y2"))
for k, p in (("unet", unet), ("varnet", varnet)):
    init = (load_checkpoint(p)[1].get("init") or {}) if k in histories else {}
    if init.get("step"):
        fig.add_vline(x=init["step"], line_dash="dot", annotation_text=f"{k}: plateau phase")
fig.update_layout(yaxis=dict(title="loss (VarNet: 1-SSIM, UNet: L1)"),
                  yaxis2=dict(title="val SSIM", overlaying="y", side="right"), xaxis_title="step", height=380)
fig.show()
pd.DataFrame([dict(model=k, step=s, gain_over_last_doubling=g) for k, h in histories.items()
              for s, g in h.get("doubling_gain", [])])

# %% [markdown]
# ## Target vs zero-filled vs UNet vs VarNet vs the classical baselines

# %%
methods = models | {spec.split(":", 1)[1]: load_model(spec) for spec in classical}
for acc in (4, 8):
    s = AnnotatedSlices(data_dir, acceleration=acc)[0]
    k, m = s.masked_kspace[None], s.mask[None]
    nl, crop = torch.tensor([s.num_low_frequencies]), tuple(s.target.shape)
    with torch.no_grad():
        recs = [s.target, zero_filled(k, crop)[0]] + [f(k, m, nl, crop)[0] for f in methods.values()]
    image_grid([r.numpy() for r in recs], ["target", f"zero-filled {acc}x"] + [f"{n} {acc}x" for n in methods],
               boxes=[s.box] * len(recs), zmax=float(s.target.max()), height=330).show()

# %% [markdown]
# ## Quality on held-out volumes
# Whole-image SSIM / PSNR / NMSE over every slice, and the *clean* box SSIM / PSNR over every located
# pathology box with the masks the attacks use: the attacks only mean something where the clean
# reconstruction shows the lesion (`lesion_retained`: 1 = as in the target, 0 = as in the lesion-free twin).

#
# The classical baselines of the attack comparison (`advmri.models.classical`) are scored the same way: CG-SENSE
# (8 CG iterations, no Tikhonov term) and l1-wavelet compressed sensing (30 FISTA iterations, db4, 3
# levels, lambda 0.003 of the zero-filled maximum), both with fastMRI's calibration-line sensitivities.

#
# The table is a verified cache (`advmri.experiments.quality`, `results/quality/`): it is reused only when the models, the
# data files and the parameters have the recorded sha256 digests and a seeded sample of slices and boxes
# recomputes identically; otherwise (or with `fresh = True`) every slice is evaluated, 8 per forward pass. The
# embedded data generated on another CPU differs from the recorded files in float32 rounding only; such a file
# counts as unchanged when its content fingerprint (`advmri.data.fingerprint`) agrees within 1e-4.

# %%
if smoke:
    q = quality_table(methods, data_dir, max_slices=max_slices, batch=8)
    qb = box_quality(methods, data_dir, max_boxes=max_slices, batch=8)
else:
    specs = {"unet": unet, "varnet": varnet} | {spec.split(":", 1)[1]: spec for spec in classical}
    q, qb, report = quality_tables(specs, data_dir, quality_dir, max_slices=max_slices, verify=verify, fresh=fresh)
    print(f"quality table: {report['status']}")
out_table = project_path(out_table)  # relative paths mean the project root, wherever the kernel runs
out_table.parent.mkdir(parents=True, exist_ok=True)
if not smoke:  # what the main job's summary reports
    out_table.with_name(out_table.stem + ".report.json").write_text(json.dumps(report))
summary(q, qb).to_csv(out_table, index=False)
summary(q, qb)
