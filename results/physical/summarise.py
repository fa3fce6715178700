"""Summarise results/physical/*.csv into summary.md: box MSE relative to the clean reconstruction (median and
maximum over boxes) and mean box PSNR at bounds 0 and 5 deg, per model and threat model (24 boxes, 8x).
Run from the project root: .venv/bin/python results/physical/summarise.py"""

from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
NAMES = {
    "coils-reference-synthetic": "coil images turn, reference interpolation (the paper's, replicated)",
    "coils-fourier-synthetic": "coil images turn, Fourier rotation",
    "object-fourier-synthetic": "object turns under fixed coils (generator's maps), Fourier rotation",
    "object-fourier-espirit": "object turns under fixed coils (ESPIRiT maps), Fourier rotation",
}
lines = [
    "| model | threat model | box MSE / clean at 0 deg: median (max) | at 5 deg: median (max) | box PSNR clean | "
    "0 deg | 5 deg | random <= 5 deg |",
    "|---|---|---|---|---|---|---|---|",
]
for model in ("varnet", "unet"):
    for key, name in NAMES.items():
        p = HERE / f"{model}-{key}.csv"
        if not p.is_file():
            continue
        d = pd.read_csv(p)
        k = ["file", "slice", "bx", "by"]
        clean = d[d.kind == "clean"].set_index(k)
        cell = []
        for b in (0.0, 5.0):
            a = d[(d.kind == "adversarial") & (d.param == b)].set_index(k)
            r = (a.box_mse / clean.box_mse).dropna()
            cell.append((f"{r.median():.3f} ({r.max():.3f})", a.box_psnr.mean()))
        rnd = d[(d.kind == "random") & (d.param == 5.0)].box_psnr.mean()
        lines.append(
            f"| {model} | {name} | {cell[0][0]} | {cell[1][0]} | {clean.box_psnr.mean():.2f} | {cell[0][1]:.2f} | "
            f"{cell[1][1]:.2f} | {rnd:.2f} |"
        )
text = (
    "# Physical rotation (issue 37): the object turns, the coils stay\n\n"
    "Made by `sh results/physical/run.sh` then `.venv/bin/python results/physical/summarise.py` (models/*-small.pt, "
    "8x, the first 24 boxes of data/synthetic/small/test, angles -5..5 deg in 0.5 deg steps, worst angle by box "
    "MSE; box MSE ratios per box against its clean reconstruction).\n\n" + "\n".join(lines) + "\n"
)
(HERE / "summary.md").write_text(text)
print(text)
