"""Tables of the beyond sweep: drops, network vs classical, stronger attacks (paired per box)."""

import numpy as np
import pandas as pd
import pytest

from advmri.report.beyond import attack_drops, classical_comparison, stronger_deltas, write_beyond


def _rows(model, box_ids, clean, adv, rnd, attack="noise", variant="PGA", target="clean", param=0.01):
    """Rows of one run: per box the clean value (eps 0 / the rotation's clean row), adversarial, 2 random draws."""
    out = []
    for b, c, a, r in zip(box_ids, clean, adv, rnd, strict=True):
        box = dict(
            file=f"f{b}",
            slice=b,
            bx=1,
            by=2,
            bw=3,
            bh=4,
            model=model,
            acceleration=8,
            attack=attack,
            variant=variant,
            target=target,
            healthy_closer=np.nan,
        )
        if attack == "noise":
            out.append(dict(box, kind="adversarial", param=0.0, draw=0, box_ssim=c, box_mse=1 - c))
            out += [dict(box, kind="random", param=0.0, draw=d, box_ssim=c, box_mse=1 - c) for d in range(2)]
        else:
            out.append(dict(box, kind="clean", param=0.0, draw=0, box_ssim=c, box_mse=1 - c))
        out.append(dict(box, kind="adversarial", param=param, draw=0, box_ssim=a, box_mse=1 - a))
        out += [
            dict(box, kind="random", param=param, draw=d, box_ssim=r + (0.01 if d else -0.01), box_mse=1 - r)
            for d in range(2)
        ]
    return out


def _frame():
    boxes = [0, 1, 2, 3]
    rows = (
        _rows("unet", boxes, [0.8, 0.7, 0.6, 0.9], [0.3, 0.2, 0.2, 0.5], [0.8, 0.7, 0.6, 0.9])
        + _rows("cg-sense", boxes[:3], [0.5, 0.5, 0.5], [0.4, 0.3, 0.35], [0.5, 0.5, 0.5])
        + _rows("unet", boxes[:2], [0.8, 0.7], [0.1, 0.25], [0.8, 0.7], variant="momentum 0.9")
        + _rows("unet", boxes, [0.8, 0.7, 0.6, 0.9], [0.2, 0.4, 0.1, 0.5], [0.8, 0.7, 0.6, 0.9], target="healthy")
    )  # another task: never mixed into the paper attack's drops
    return pd.DataFrame(rows)


def test_attack_drops_pair_per_box():
    d = attack_drops(_frame())
    u = d[(d.model == "unet") & (d.attack == "noise")].iloc[0]
    assert u["drop"] == pytest.approx(np.mean([-0.5, -0.5, -0.4, -0.4]))
    assert u["clean"] == pytest.approx(0.75) and u["adversarial"] == pytest.approx(0.3)
    assert u["random_drop"] == pytest.approx(0.0, abs=1e-12)  # the draws average to the clean value
    assert u["adv_minus_random"] == pytest.approx(-0.45) and u.boxes == 4 and u.drop_lo < u["drop"] < u.drop_hi
    assert len(d[d.model == "unet"]) == 1  # the momentum variant and the erasure run are not the paper attack


def test_network_minus_classical_on_the_classical_boxes():
    c = classical_comparison(_frame())
    u = c[(c.method == "unet") & (c.classical_boxes == "cg-sense")].iloc[0]
    assert u.boxes == 3  # the classical run's boxes only
    assert u["drop"] == pytest.approx(np.mean([-0.5, -0.5, -0.4]))
    assert u.minus_classical == pytest.approx(np.mean([-0.5 + 0.1, -0.5 + 0.2, -0.4 + 0.15]))
    g = c[c.method == "cg-sense"].iloc[0]
    assert g["drop"] == pytest.approx(-0.15) and np.isnan(g.minus_classical)


def test_stronger_attack_against_the_default_on_the_same_boxes():
    s = stronger_deltas(_frame())
    assert len(s) == 1
    r = s.iloc[0]
    assert r.variant == "momentum 0.9" and r.boxes == 2
    assert r["default"] == pytest.approx(0.25) and r.stronger == pytest.approx(0.175)
    assert r.delta == pytest.approx(-0.075) and r.worse == 1  # box 1 got better (0.25 > 0.2)


def test_write_beyond_tables(tmp_path):
    df = _frame().assign(code_version="abc", sweep_run="r")
    st = dict(sweeps=["beyond"], runs=["r"], result_code_versions=["abc"])
    out = write_beyond(df, tmp_path / "t", tmp_path / "f", st, formats=())
    names = sorted(p.name for p in out["tables"])
    assert names == ["classical.md", "stronger.md", "values-beyond.json"]  # no twins in this frame: no erasure table
    text = (tmp_path / "t" / "classical.md").read_text()
    assert "cg-sense" in text and "code abc" in text
    assert (tmp_path / "f" / "classical_noise.html").is_file()
