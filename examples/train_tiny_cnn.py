"""Train ``tiny_cnn.py``'s model for about a minute on the embedded training set; write ``tiny_cnn.pt``.

    .venv/bin/python examples/train_tiny_cnn.py [--steps 300] [--data data/synthetic/small/train]

Input: the zero-filled RSS image of randomly undersampled k-space (4x or 8x, fastMRI's random masks and
centre fractions), normalised as advmri's image adapter does; target: the fully sampled RSS image normalised
with the input's mean and std; L1 loss, Adam. Seeded: the same steps give the same weights on one machine.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def slices(folder: str) -> list[tuple[str, int]]:
    files = sorted(glob.glob(str(Path(folder) / "multicoil" / "*.h5")) or glob.glob(str(Path(folder) / "*.h5")))
    if not files:
        raise SystemExit(f"error: {folder}: no .h5 files (run python -m advmri.app.pipeline --until data first)")
    out = []
    for f in files:
        with h5py.File(f) as h:
            out += [(f, i) for i in range(h["kspace"].shape[0])]
    return out


def batch(items, rng: np.random.Generator):
    from advmri.core.masks import mask_func, sample_mask
    from advmri.models.networks import zero_filled

    xs, ys = [], []
    for f, i in items:
        with h5py.File(f) as h:
            k = torch.from_numpy(h["kspace"][i])  # (coils, rows, cols) complex64
            target = torch.from_numpy(h["reconstruction_rss"][i])  # (H, W)
            pad = (int(h.attrs["padding_left"]), int(h.attrs["padding_right"]))
        m, _ = sample_mask(
            mask_func("random", (int(rng.choice([4, 8])),)), tuple(k.shape[-2:]), pad, int(rng.integers(2**31))
        )
        x = zero_filled((k * m).unsqueeze(0), target.shape)[0]
        mean, std = x.mean(), x.std()
        xs.append(((x - mean) / (std + 1e-11)).clamp(-6, 6))
        ys.append((target - mean) / (std + 1e-11))
    return torch.stack(xs)[:, None], torch.stack(ys)[:, None]  # (batch, 1, H, W) each


def main() -> int:
    from tiny_cnn import TinyCNN

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--data", default=str(HERE.parent / "data" / "synthetic" / "small" / "train"))
    ap.add_argument("--out", default=str(HERE / "tiny_cnn.pt"))
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    items = slices(a.data)
    model = TinyCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    t0 = time.perf_counter()
    for step in range(1, a.steps + 1):
        x, y = batch([items[j] for j in rng.integers(len(items), size=a.batch)], rng)
        loss = (model(x) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"step {step}/{a.steps}: L1 {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    Path(a.out).write_bytes(buf.getvalue())
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    Path(a.out + ".sha256").write_text(f"{digest}  {Path(a.out).name}\n")
    print(f"-> {a.out} (sha256 {digest[:16]}..., {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
