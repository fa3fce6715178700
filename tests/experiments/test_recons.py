"""advmri.experiments.recons: a run without a random control still stores its reconstructions."""

import numpy as np
import torch

from advmri.experiments.run import AttackRun, execute
from advmri.models.networks import build, save_checkpoint


def _run(tmp_path, tiny_data, **noise):
    ck = tmp_path / "u.pt"
    if not ck.is_file():
        torch.manual_seed(1)
        save_checkpoint(ck, build("unet", "tiny"))
    return AttackRun.from_params(
        "noise",
        model=str(ck),
        data_dir=str(tiny_data),
        max_targets=3,
        eps=[0.0, 0.01, 0.02],
        steps=3,
        random_draws=2,
        threads=1,
        **noise,
    )


def test_a_run_without_control_stores_its_reconstructions(tmp_path, tiny_data):
    from advmri.experiments import recons

    run = _run(tmp_path, tiny_data)
    run.noise.random_draws = 0
    df, extras = execute(run, progress=False, keep_images=True)
    assert set(df.kind) == {"adversarial"} and df.random_sampled_fraction.isna().all()
    p = recons.save(tmp_path / "r.recons.h5", extras, run.as_dict(), "unet", "tiny", "v")
    rr = recons.load(p)
    assert np.isnan(rr.targets[0].random).all() and np.isfinite(rr.targets[0].adversarial).all()
