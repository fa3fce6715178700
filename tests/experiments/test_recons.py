"""advmri.experiments.recons: a run without a random control still stores its reconstructions."""

import numpy as np

from advmri.experiments.run import execute


def test_a_run_without_control_stores_its_reconstructions(tmp_path, noise_run):
    from advmri.experiments import recons

    run = noise_run()
    run.noise.random_draws = 0
    df, extras = execute(run, progress=False, keep_images=True)
    assert set(df.kind) == {"adversarial"} and df.random_sampled_fraction.isna().all()
    p = recons.save(tmp_path / "r.recons.h5", extras, run.as_dict(), "unet", "tiny", "v")
    rr = recons.load(p)
    assert np.isnan(rr.targets[0].random).all() and np.isfinite(rr.targets[0].adversarial).all()
