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
# # 1 · Data: a synthetic multi-coil knee in the fastMRI format
# One volume of the embedded data set (or of real fastMRI data): coil images, sensitivities,
# k-space, undersampling masks at 4x and 8x, zero-filled images and the fastMRI+ boxes.

# %% tags=["parameters"]
data_dir = "data/synthetic/small/test"  # a data-set folder (multicoil/ + knee.csv) or a fastMRI folder
annotations = None  # fastMRI+ knee.csv; default: knee.csv beside the .h5 folder
volume = 0  # index into the sorted files
slice_idx = -1  # -1: the first annotated slice of the volume
smoke = False  # True: generate a tiny data set and run in seconds

# %%
import tempfile
from pathlib import Path

import numpy as np
import torch

from advmri.core import kspace as K
from advmri.data.annotations import read_annotations
from advmri.data.dataset import AnnotatedSlices
from advmri.data.synth import generate_dataset
from advmri.report.figures import image_grid
from advmri.models import zero_filled

if smoke:
    data_dir = tempfile.mkdtemp()
    generate_dataset("tiny", 2, seed=0, out=data_dir, progress=False)
ds = AnnotatedSlices(data_dir, annotations, with_unannotated=True)
fname = sorted(ds.infos)[volume]
info = ds.infos[fname]
print(info)

# %% [markdown]
# ## Annotations (fastMRI+ format: boxes on the up/down flipped image)

# %%
ann = ds.annotations
ann[ann.file == fname] if ann is not None else "no annotation file"

# %%
items = [i for i, (f, s, b, lab) in enumerate(ds.items) if f == fname and b is not None]
if slice_idx < 0:
    idx = items[0] if items else [i for i, it in enumerate(ds.items) if it[0] == fname][0]
else:
    idx = [i for i, it in enumerate(ds.items) if it[0] == fname and it[1] == slice_idx][0]
s = ds[idx]
boxes = [b for f, sl, b, lab in ds.items if f == fname and sl == s.slice_idx and b is not None]
print(s.fname, "slice", s.slice_idx, "label", s.label, "box (array coords)", s.box)

# %% [markdown]
# ## Coil images, sensitivities and k-space

# %%
coil = K.ifft2c(s.kspace)  # (coils, rows, cols) complex
rss = K.rss(coil)
sens = (coil / rss.clamp_min(1e-6)).abs()
n = min(4, coil.shape[0])
image_grid([coil[i].abs().numpy() for i in range(n)], [f"coil {i}" for i in range(n)], height=320).show()
image_grid([sens[i].numpy() for i in range(n)], [f"|S_{i}| (coil / RSS)" for i in range(n)], zmax=1.0, height=320).show()
image_grid([np.log1p(s.kspace[0].abs().numpy() * 1e3), rss.numpy()],
           ["log |k| coil 0 (zero columns outside padding)", "RSS (full FOV, 2x readout)"], height=360).show()

# %% [markdown]
# ## Undersampling masks and zero-filled reconstructions

# %%
crop = tuple(s.target.shape)
imgs, titles = [s.target.numpy()], ["fully sampled target"]
for acc in (4, 8):
    d = AnnotatedSlices(data_dir, annotations, acceleration=acc, with_unannotated=True)[idx]
    imgs.append(zero_filled(d.masked_kspace[None], crop)[0].numpy())
    titles.append(f"zero-filled {acc}x ({int(d.mask.sum())}/{d.mask.numel()} columns)")
image_grid(imgs, titles, boxes=[s.box] * 3, height=360).show()

# %% [markdown]
# ## Boxes on the image (array orientation, after the y-flip) and the lesion-free twin

# %%
tw = [s.target.numpy()] + ([np.abs(s.target - s.healthy).numpy()] if s.healthy is not None else [])
fig = image_grid(tw, ["target with boxes", "|target - healthy twin|"][: len(tw)], height=380)
for b in boxes:
    for c in range(1, len(tw) + 1):
        fig.add_shape(type="rect", x0=b.x - .5, x1=b.x + b.w - .5, y0=b.y - .5, y1=b.y + b.h - .5,
                      line=dict(color="yellow"), row=1, col=c)
fig.show()
