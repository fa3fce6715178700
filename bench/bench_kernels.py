"""Attack-step throughput: advmri.models.fastvarnet's VarNet forward against fastMRI's, side by side in one run.

    python bench/bench_kernels.py --out bench/RESULTS.md            # CPU: small models, small preset, 4 boxes
    python bench/bench_kernels.py --device cuda --model-config paper --preset fastmri --out bench/RESULTS.md

For each model and precision, one PGA step of the noise attack (``adversarial_noise``, ``steps=1``: the
reconstruction, the box loss, its gradient with respect to the k-space noise, the step and the projection) is timed
with the code of ``--baseline`` (default: the commit before the fast kernels, checked out as a git worktree) and
with this checkout's code, each in its own worker process, alternating old, new, old, new (``--rounds``) so that
both see the same machine state; the medians are over every timed step of each side.

FLOPs: convolutions and matrix products of one step counted by ``torch.utils.flop_counter`` on the old path (the
same arithmetic as the new). Peak: a large float32 and bfloat16 matrix product measured here, same threads.
Agreement (in this process): the fast path's perturbation against fastMRI's forward (``impl=fastmri``) in float64
(first item, 2 steps), and the float32 box MSE after one step.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from advmri.attacks.common import box_scores, make_batch
from advmri.attacks.noise import NoiseConfig, adversarial_noise, recon_with_noise
from advmri.data.dataset import AnnotatedSlices
from advmri.data.synth import generate_dataset
from advmri.models.networks import build
from advmri.util.perf import keep_freed_memory


def peak_gflops(dtype: torch.dtype, device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Measured matrix-product peak (GFLOP/s) of ``n x n`` by ``n x n`` in ``dtype`` (the best of ``repeats``)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    (a @ b).sum()
    best = float("inf")
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def step_flops(model, tb, eps, cfg) -> float:
    """Convolution and matrix-product FLOPs of one attack step (forward and backward)."""
    with FlopCounterMode(display=False) as fc:
        adversarial_noise(model, tb, eps, cfg)
    return float(fc.get_total_flops())


def agreement(model, tb, eps) -> tuple[float, float]:
    """(float64 relative perturbation difference after 2 steps on one item, float32 box-MSE difference after 1),
    ``impl=fast`` against ``impl=fastmri``."""
    one = tb.select([0])
    m64 = copy.deepcopy(model).double()
    z = {
        impl: adversarial_noise(m64.set_impl(impl), one.double(), eps[:1].double(), NoiseConfig(steps=2))
        for impl in ("fastmri", "fast")
    }
    d64 = float((z["fast"] - z["fastmri"]).norm() / z["fastmri"].norm())
    mse = {}
    for impl in ("fastmri", "fast"):
        model.set_impl(impl)
        zz = adversarial_noise(model, tb, eps, NoiseConfig(steps=1))
        with torch.no_grad():
            mse[impl] = box_scores(recon_with_noise(model, tb, zz), tb)["box_mse"]
    model.set_impl("fast")
    d32 = float(((mse["fast"] - mse["fastmri"]).abs() / mse["fastmri"]).max())
    return d64, d32


BASELINE = "3a9f4f1"  # main before the fast kernels (2026-12-07)


def batch(preset: str, boxes: int, device: torch.device):
    """The benchmark's target batch: ``boxes`` boxes of a 2-volume synthetic set (seed 3), eps 0.01 each."""
    tmp = tempfile.mkdtemp()
    generate_dataset(preset, 2, seed=3, out=tmp, progress=False)
    ds = AnnotatedSlices(tmp)
    tb = make_batch([ds[i % len(ds)] for i in range(boxes)]).to(device)
    return tb, torch.full((len(tb),), 0.01, device=device)


def worker(a: argparse.Namespace) -> int:
    """Time ``--repeats`` attack steps of one case with whatever advmri is importable; print them as JSON."""
    dev = torch.device(a.device)
    if dev.type == "cpu":
        keep_freed_memory()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    tb, eps = batch(a.preset, a.boxes, dev)
    torch.manual_seed(0)
    model = build(a.models[0], a.model_config).to(dev).freeze().set_precision(a.precisions[0])
    cfg = NoiseConfig(steps=1)
    adversarial_noise(model, tb, eps, cfg)  # warm-up
    times = []
    for _ in range(a.repeats):
        sync()
        t = time.perf_counter()
        adversarial_noise(model, tb, eps, cfg)
        sync()
        times.append(time.perf_counter() - t)
    print("TIMES " + json.dumps(times), flush=True)
    return 0


def timed(lib: Path, kind: str, precision: str, a: argparse.Namespace) -> list[float]:
    """Step times from a worker process importing advmri from ``lib``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--models", kind, "--precisions", precision]
    cmd += ["--preset", a.preset, "--model-config", a.model_config, "--device", a.device]
    cmd += ["--boxes", str(a.boxes), "--repeats", str(a.repeats)]
    env = dict(__import__("os").environ, PYTHONPATH=str(lib))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return list(json.loads(next(x for x in out.splitlines() if x.startswith("TIMES "))[6:]))


def baseline_lib(ref: str) -> Path:
    """The ``lib`` folder of a git worktree of ``ref`` (made once under the system's temporary folder)."""
    root = Path(__file__).resolve().parents[1]
    wt = Path(tempfile.gettempdir()) / f"advmri-baseline-{ref}"
    if not wt.is_dir():
        subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "--detach", str(wt), ref], check=True, capture_output=True
        )
    return wt / "lib"


def case(kind: str, precision: str, a: argparse.Namespace, tb, eps, peaks: dict, base: Path) -> dict:
    here = Path(__file__).resolve().parents[1] / "lib"
    old: list[float] = []
    new: list[float] = []
    for _ in range(a.rounds):
        old += timed(base, kind, precision, a)
        new += timed(here, kind, precision, a)
    torch.manual_seed(0)
    model = build(kind, a.model_config).to(tb.kspace.device).freeze().set_precision(precision)
    flops = step_flops(model.set_impl("fastmri"), tb, eps, NoiseConfig(steps=1))
    model.set_impl("fast")
    peak = peaks[precision]
    row = dict(
        model=f"{kind}/{a.model_config}",
        precision=precision,
        items=len(tb),
        gflop=flops / 1e9,
        peak_gflops=peak,
        old_s=statistics.median(old),
        new_s=statistics.median(new),
        old_all=old,
        new_all=new,
    )
    row["speedup"] = row["old_s"] / row["new_s"]
    row["old_peak_fraction"] = flops / row["old_s"] / 1e9 / peak
    row["new_peak_fraction"] = flops / row["new_s"] / 1e9 / peak
    if precision == "fp32":
        row["float64_rel_diff"], row["float32_box_mse_rel_diff"] = agreement(model, tb, eps)
    return row


def markdown(rows: list[dict], head: str, peaks: dict) -> str:
    out = [
        f"### Attack step, {rows[0].get('baseline', 'baseline')} (old) vs this code (new): {head}",
        "",
        f"Measured peak: {peaks['fp32']:.0f} GFLOP/s float32, {peaks['bf16']:.0f} GFLOP/s bfloat16 (matrix product).",
        "",
        "| model | precision | items | GFLOP/step | old (s) | new (s) | old/new | old % of peak | new % of peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['precision']} | {r['items']} | {r['gflop']:.1f} | {r['old_s']:.3f} | "
            f"{r['new_s']:.3f} | {r['speedup']:.2f}x | {r['old_peak_fraction']:.0%} | {r['new_peak_fraction']:.0%} |"
        )
    for r in rows:
        if "float64_rel_diff" in r:
            out += [
                "",
                f"Agreement ({r['model']}): perturbation after 2 PGA steps, new vs old, in float64: "
                f"{r['float64_rel_diff']:.1e} relative; float32 box MSE after one step: "
                f"{r['float32_box_mse_rel_diff']:.1e} relative (max over boxes).",
            ]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--model-config", default="small")
    ap.add_argument("--models", nargs="+", default=["varnet", "unet"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--boxes", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="timed steps per worker process")
    ap.add_argument("--rounds", type=int, default=3, help="old/new worker pairs per case")
    ap.add_argument("--baseline", default=BASELINE, help="git ref of the old code (default: before the fast kernels)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a)
    dev = torch.device(a.device)
    if dev.type == "cpu":
        keep_freed_memory()
    tb, eps = batch(a.preset, a.boxes, dev)
    base = baseline_lib(a.baseline)
    peaks = {"fp32": peak_gflops(torch.float32, dev), "bf16": peak_gflops(torch.bfloat16, dev)}
    rows = [case(k, p, a, tb, eps, peaks, base) for k in a.models for p in a.precisions]
    name = torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or platform.machine()
    head = (
        f"{a.preset} preset, {a.model_config} models, {a.device} ({name}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {date.today()}"
    )
    for r in rows:
        r["baseline"] = f"code of {a.baseline}"
    text = markdown(rows, head, peaks)
    print(text)
    if a.out:
        out = Path(a.out)
        out.write_text((out.read_text() if out.is_file() else "") + "\n" + text)
        js = out.with_suffix(".json")
        runs = json.loads(js.read_text()) if js.is_file() else []
        runs.append(dict(bench="bench_kernels", setup=head, peaks=peaks, rows=rows, argv=list(argv or sys.argv[1:])))
        js.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
