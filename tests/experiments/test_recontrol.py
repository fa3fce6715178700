"""advmri.experiments.recontrol: recomputing only the random control of a run folder from before the fix (issue
21) agrees with a fresh run; a dirty tree is refused."""

import pytest
from conftest import untrained

from advmri.experiments.verify import compare


def test_recontrol_rewrites_only_the_control(tmp_path, tiny_data, monkeypatch):
    """A run folder from before the fix (no fraction columns, other random rows): recontrol keeps the adversarial
    rows, recomputes the control, and its table agrees with a fresh run; a dirty tree is refused without the flag."""
    import json

    import yaml

    from advmri.experiments.recontrol import recontrol
    from advmri.experiments.run import CONTROL_COLUMNS, read_table
    from advmri.experiments.sweep import read_status, run_sweep, table_digest
    from advmri.util import provenance
    from advmri.util.errors import UserError

    ck = untrained(tmp_path / "u.pt", seed=1)
    cfg = tmp_path / "rc.yaml"
    cfg.write_text(
        yaml.safe_dump(
            dict(
                name="rc",
                notebooks={"noise": "notebooks/03_noise_attack.ipynb"},
                grid=dict(model=[str(ck)], attack=["noise"]),
                common=dict(
                    data_dir=str(tiny_data), max_targets=2, eps=[0.0, 0.01], steps=3, random_draws=2, threads=1
                ),
            )
        )
    )
    st = run_sweep(cfg, results=tmp_path, log=lambda *a: None)
    (rid,) = st
    folder = tmp_path / "rc" / rid
    fresh = read_table(folder / "results.csv")
    old = fresh.drop(columns=list(CONTROL_COLUMNS))
    old.loc[old.kind == "random", "box_mse"] *= 1.5  # the old control's rows differ
    old.to_csv(folder / "results.csv", index=False)
    s = read_status(folder)
    s["results_sha256"], s["results_rows"] = table_digest(folder / "results.csv")
    (folder / "status.json").write_text(json.dumps(s))
    monkeypatch.setattr(provenance, "code_version", lambda: "0123456789ab+dirty")
    with pytest.raises(UserError, match="uncommitted changes"):
        recontrol(folder, log=lambda *a: None)
    monkeypatch.undo()
    status = recontrol(folder, log=lambda *a: None, allow_dirty=True)
    new = read_table(folder / "results.csv")
    assert not compare(new, fresh)["bad"].any()
    assert status["recontrol"]["passes_reused"] + status["recontrol"]["passes_recomputed"] > 0
    assert status["results_sha256"] == table_digest(folder / "results.csv")[0] and status["control_machine"]
    assert (folder / "results.recons.h5").is_file()
