"""advmri.experiments.quality: the model-quality table as a verified cache."""

from __future__ import annotations

import hashlib
import json

import pytest

from advmri.experiments.quality import QualityMismatch, quality_tables


def test_quality_table_is_recorded_reused_after_verification_and_recomputed_when_inputs_change(
    quality_specs, tiny_data, tmp_path
):
    logs: list[str] = []
    folder = tmp_path / "quality"
    q, qb, rep = quality_tables(quality_specs, tiny_data, folder, max_slices=6, batch=4, verify=2, log=logs.append)
    assert rep["status"] == "computed" and (folder / "record.json").is_file()
    rec = json.loads((folder / "record.json").read_text())
    assert (
        rec["inputs"][next(k for k in rec["inputs"] if k.endswith("u.pt"))]
        == hashlib.sha256(open(quality_specs["unet"], "rb").read()).hexdigest()
    )
    q2, qb2, rep2 = quality_tables(quality_specs, tiny_data, folder, max_slices=6, batch=4, verify=2, log=logs.append)
    assert rep2["status"] == "reused" and rep2["verified_rows"] > 0
    assert q2.equals(q) and qb2.equals(qb)
    assert any(line.startswith("quality: verified") for line in logs)
    # other parameters: recomputed, not reused
    _, _, rep3 = quality_tables(quality_specs, tiny_data, folder, max_slices=4, batch=4, verify=2, log=logs.append)
    assert rep3["status"] == "computed" and rep3["why"] == "parameters changed"


def test_a_changed_recorded_value_is_caught_by_the_sample(quality_specs, tiny_data, tmp_path):
    folder = tmp_path / "quality"
    quality_tables(quality_specs, tiny_data, folder, max_slices=4, batch=4, verify=2, log=lambda *a: None)
    t = folder / "slices.csv"
    lines = t.read_text().splitlines()
    head = lines[0].split(",")
    for i in range(1, len(lines)):  # every ssim 1% lower, digest updated: only recomputation can tell
        cells = lines[i].split(",")
        cells[head.index("ssim")] = repr(float(cells[head.index("ssim")]) * 0.99)
        lines[i] = ",".join(cells)
    t.write_text("\n".join(lines) + "\n")
    rec = json.loads((folder / "record.json").read_text())
    rec["tables"]["slices.csv"] = hashlib.sha256(t.read_bytes()).hexdigest()
    (folder / "record.json").write_text(json.dumps(rec))
    with pytest.raises(QualityMismatch) as e:
        quality_tables(quality_specs, tiny_data, folder, max_slices=4, batch=4, verify=2, log=lambda *a: None)
    assert "slices.csv: recorded quality not reproduced" in str(e.value) and "ssim" in str(e.value)
    assert "\n" not in str(e.value)
    # a table edited without its digest is not reused at all: recomputed
    t.write_text(t.read_text().replace("unet", "unet", 1) + "\n")
    _, _, rep = quality_tables(quality_specs, tiny_data, folder, max_slices=4, batch=4, verify=2, log=lambda *a: None)
    assert rep["status"] == "computed" and "slices.csv missing or altered" in rep["why"]


def test_data_of_another_cpu_reuses_the_record_but_a_real_change_recomputes(quality_specs, tiny_copy, tmp_path):
    """The embedded data generated on another CPU differs in float32 rounding (sha256 differs, content agrees):
    the record is reused after its sample verifies; a file whose content changed is recomputed."""
    import h5py
    import numpy as np

    data, first = tiny_copy
    folder = tmp_path / "quality"
    _, _, rep = quality_tables(quality_specs, data, folder, max_slices=4, batch=4, verify=2, log=lambda *a: None)
    assert rep["status"] == "computed" and (folder / "fingerprints.json").is_file()
    rng = np.random.default_rng(1)
    with h5py.File(first, "r+") as f:  # another CPU's last bits
        for name in ("kspace", "reconstruction_rss"):
            x = f[name][()]
            f[name][...] = (x * (1 + 3e-7 * rng.standard_normal(x.shape))).astype(x.dtype)
    logs: list[str] = []
    _, _, rep = quality_tables(quality_specs, data, folder, max_slices=4, batch=4, verify=2, log=logs.append)
    assert rep["status"] == "reused" and rep["verified_rows"] > 0, rep
    assert "1 data file(s) not byte-identical" in rep["why"] and any("same content" in line for line in logs)
    with h5py.File(first, "r+") as f:  # a real change: one slice's k-space 1% stronger
        x = f["kspace"][()]
        x[0] *= 1.01
        f["kspace"][...] = x
    _, _, rep = quality_tables(quality_specs, data, folder, max_slices=4, batch=4, verify=2, log=lambda *a: None)
    assert rep["status"] == "computed" and rep["why"] == f"input changed: {first} (kspace)", rep


def test_a_record_without_fingerprints_is_reused_only_byte_identical(quality_specs, tiny_copy, tmp_path):
    import h5py

    data, first = tiny_copy
    folder = tmp_path / "quality"
    quality_tables(quality_specs, data, folder, max_slices=4, batch=4, verify=0, log=lambda *a: None)
    (folder / "fingerprints.json").write_text("{}")  # swapped: its sha256 no longer the recorded one
    with h5py.File(first, "r+") as f:
        f["kspace"][0, 0, 0, 0] += 1.0
    _, _, rep = quality_tables(quality_specs, data, folder, max_slices=4, batch=4, verify=0, log=lambda *a: None)
    assert rep["status"] == "computed" and rep["why"] == f"input changed: {first}"
