import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from advmri.core import metrics as M
from advmri.core.boxes import Box
from advmri.models.networks import CheckpointError, build, load_checkpoint, load_official, save_checkpoint
from advmri.models.train import train


def _inputs(b=2):
    g = torch.Generator().manual_seed(0)
    k = torch.view_as_complex(torch.randn(b, 4, 96, 64, 2, generator=g))
    m = torch.zeros(64, dtype=torch.bool)
    m[::4] = True
    m[28:36] = True
    return k * m, m


def test_tiny_training_lowers_loss(tiny_data, tmp_path):
    h = train("varnet", "tiny", tiny_data, tmp_path / "v.pt", steps=24, lr=3e-3, val_interval=100, save_every=100,
              progress=False, val_every_nth=3)
    assert np.mean(h["loss"][-6:]) < np.mean(h["loss"][:6])
    h = train("unet", "tiny", tiny_data, tmp_path / "u.pt", steps=30, batch=4, lr=3e-3, val_interval=100,
              save_every=100, progress=False, val_every_nth=3)
    assert np.mean(h["loss"][-6:]) < np.mean(h["loss"][:6])


def test_resume_continues_identically(tiny_data, tmp_path):
    kw = dict(val_interval=100, save_every=5, progress=False, val_every_nth=3, lr=3e-3)
    h_full = train("unet", "tiny", tiny_data, tmp_path / "a.pt", steps=10, batch=2, **kw)
    train("unet", "tiny", tiny_data, tmp_path / "b.pt", steps=10, batch=2, stop_at=4, **kw)
    h_res = train("unet", "tiny", tiny_data, tmp_path / "b.pt", steps=10, batch=2, resume=True, **kw)
    assert np.allclose(h_full["loss"], h_res["loss"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["varnet", "unet"])
def test_save_load_roundtrip_identical(kind, tmp_path):
    torch.manual_seed(1)
    m = build(kind, "tiny").freeze()
    k, mask = _inputs()
    out = m(k, mask, 8, (48, 48))
    digest = save_checkpoint(tmp_path / "m.pt", m, extra={"note": "x"})
    m2, extra = load_checkpoint(tmp_path / "m.pt")
    assert extra == {"note": "x"} and len(digest) == 64
    assert torch.equal(m2.freeze()(k, mask, 8, (48, 48)), out)


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    m = build("varnet", "tiny")
    p = tmp_path / "m.pt"
    save_checkpoint(p, m)
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"m.pt: sha256"):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match=r"m.pt: not a loadable"):
        load_checkpoint(p, verify=False)
    # a VarNet state_dict labelled as a UNet
    bad = tmp_path / "bad.pt"
    torch.save({"kind": "unet", "config": "tiny", "params": build("unet", "tiny").params,
                "state_dict": m.net.state_dict()}, bad)
    with pytest.raises(CheckpointError, match=r"bad.pt: weights do not fit fastMRI unet/tiny"):
        load_checkpoint(bad)


@pytest.mark.parametrize("kind", ["varnet", "unet"])
def test_official_state_dict_layout_loads(kind, tmp_path):
    # a state_dict with fastMRI's key names and shapes, as the official knee files hold
    ref = build(kind, "paper")
    p = tmp_path / f"{kind}_official.pt"
    torch.save(ref.net.state_dict(), p)
    m = load_official(kind, p)
    k0 = next(iter(ref.net.state_dict()))
    assert torch.equal(m.net.state_dict()[k0], ref.net.state_dict()[k0])
    # wrong shapes (small config) are rejected with the file named
    torch.save(build(kind, "small").net.state_dict(), p)
    with pytest.raises(CheckpointError, match=p.name):
        load_official(kind, p)


def test_official_missing_says_where_to_put_it(tmp_path):
    with pytest.raises(CheckpointError, match="knee_leaderboard_state_dict.pt"):
        load_official("varnet", cache=tmp_path)


def test_metrics_agree_with_skimage():
    g = torch.Generator().manual_seed(3)
    gt = torch.rand(3, 40, 36, generator=g, dtype=torch.float64)
    pred = gt + 0.05 * torch.randn(3, 40, 36, generator=g, dtype=torch.float64)
    for i in range(3):
        a, b = gt[i].numpy(), pred[i].numpy()
        dr = a.max()
        assert M.ssim(pred, gt)[i].item() == pytest.approx(structural_similarity(a, b, data_range=dr), abs=1e-6)
        assert M.psnr(pred, gt)[i].item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=dr), abs=1e-6)
    box = Box(5, 6, 12, 10)
    bm = M.box_metrics(pred, gt, box)
    a, b = gt[0, 6:16, 5:17].numpy(), pred[0, 6:16, 5:17].numpy()
    assert bm["ssim"][0].item() == pytest.approx(structural_similarity(a, b, data_range=gt[0].max().item()), abs=1e-6)
    assert bm["psnr"][0].item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=gt[0].max().item()), abs=1e-6)


def test_plateau_training_warm_starts_and_stops(tiny_data, tmp_path):
    """``init`` continues the learning curve; ``plateau`` stops at the first validation step whose gain
    over the last doubling of steps is below the tolerance (a huge tolerance: the first possible one)."""
    kw = dict(progress=False, val_every_nth=3, lr=3e-3, batch=2)
    train("unet", "tiny", tiny_data, tmp_path / "a.pt", steps=4, val_interval=2, save_every=2, **kw)
    h = train("unet", "tiny", tiny_data, tmp_path / "b.pt", steps=40, val_interval=2, save_every=2,
              init=tmp_path / "a.pt", plateau=10.0, precision="bf16", **kw)
    assert h["val_step"][:2] == [2, 4] and h["val_step"][-1] == 8  # 8 is the first s with s/2 >= 4 validated
    _, extra = load_checkpoint(tmp_path / "b.pt")
    assert extra["plateau_reached"] and extra["step"] == 8 and extra["init"]["step"] == 4
    assert extra["precision"] == "bf16" and h["doubling_gain"][-1][0] == 8
    with pytest.raises(Exception, match="steps: 3 is not beyond the 4 steps"):
        train("unet", "tiny", tiny_data, tmp_path / "c.pt", steps=3, init=tmp_path / "a.pt", **kw)
    with pytest.raises(Exception, match="varnet/tiny checkpoint, not unet"):
        save_checkpoint(tmp_path / "v.pt", build("varnet", "tiny"))
        train("unet", "tiny", tiny_data, tmp_path / "d.pt", steps=30, init=tmp_path / "v.pt", **kw)


def test_box_quality_covers_every_located_box(tiny_data):
    from advmri.data.dataset import AnnotatedSlices
    from advmri.experiments.evaluate import box_quality, quality_table, summary

    models = {"unet": build("unet", "tiny").freeze()}
    qb = box_quality(models, tiny_data, accelerations=(8,), progress=False)
    n = len(AnnotatedSlices(tiny_data, acceleration=8))
    assert len(qb) == 2 * n and set(qb.method) == {"zero-filled", "unet"}
    assert qb.box_ssim.between(-1, 1).all() and qb.lesion_retained.notna().any()
    s = summary(quality_table(models, tiny_data, accelerations=(8,), max_slices=2, progress=False), qb)
    assert {"box_ssim", "box_psnr", "boxes"} <= set(s.columns) and (s.boxes == n).all()
