"""advmri.report.checks: the budget law's constant and the step sweep on constructed rows."""

import numpy as np
import pandas as pd
import pytest

from advmri.report.checks import fit_law


def test_fit_law_recovers_the_constant():
    law = pd.DataFrame(dict(coils=[4, 8, 15, 24], mean=[1.27 / np.sqrt(c) for c in (4, 8, 15, 24)]))
    assert fit_law(law) == pytest.approx(1.27)


def test_budget_law_and_step_sweep_on_constructed_rows():
    from advmri.report.checks import budget_law, step_sweep

    rows = []
    for c in (4, 16):
        for b in range(3):
            rows.append(
                dict(
                    update="reference",
                    kind="adversarial",
                    param=0.01,
                    coils=c,
                    budget_fraction=1.2 / np.sqrt(c),
                    file=f"f{b}",
                    slice=0,
                    bx=b,
                    by=0,
                    bw=8,
                    bh=8,
                )
            )
    law = budget_law(pd.DataFrame(rows))
    assert list(law.coils) == [4, 16] and np.allclose(law.sqrt_C_times_mean, 1.2)
    assert fit_law(law) == pytest.approx(1.2)
    rows = []
    for steps, mse in ((10, 0.9), (50, 1.0)):
        for b in range(2):
            rows.append(
                dict(
                    model="unet",
                    acceleration=8,
                    kind="adversarial",
                    param=0.01,
                    update="ours",
                    steps=steps,
                    step_size=0.5,
                    precision="fp32",
                    box_mse=mse * (b + 1),
                    box_psnr=20.0,
                    box_ssim=0.5,
                    file=f"f{b}",
                    slice=0,
                    bx=b,
                    by=0,
                    bw=8,
                    bh=8,
                )
            )
    s = step_sweep(pd.DataFrame(rows)).set_index("steps")
    assert s.loc[10, "mse_vs_best"] == pytest.approx(0.9) and s.loc[50, "mse_vs_best"] == pytest.approx(1.0)
