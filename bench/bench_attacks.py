"""Batched attacks vs a straightforward per-sample loop, same inputs, one process.

    python bench/bench_attacks.py --out bench/RESULTS.md [--model unet] [--profile] [--scan-chunks 1 2 4 8 16]
    python bench/bench_attacks.py --device cuda --model-config paper --preset fastmri --out bench/RESULTS.md

Cases: rotation grid (99 angles) on one slice -- batched (``sweep_angles``, ``--chunk`` angles per
pass; default ``advmri.util.perf.default_chunk``: 16 on CUDA, on CPU 4 or fewer for large k-space) vs one angle per
forward pass;
noise attack on B boxes x E eps values -- batched (PGA over ``--chunk`` items at a time, as
``advmri.experiments.run`` does) vs one (box, eps) per forward/backward pass. Medians over ``--repeats``.

Agreement, checked here on every run: rotation metrics (float32) within 1e-4 relative; noise
perturbations after all steps within 1e-6 relative **in float64** (model and data cast to double on
the first 2 items). In float32 the batched and looped PGA drift apart over steps (convolution
kernels differ by batch size at ~1e-7 and the normalised gradient amplifies it); the float32 final
box-MSE difference is reported for information. ``--profile`` adds where the batched noise attack's
time goes; ``--scan-chunks`` times per-item cost against the chunk size.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from advmri.attacks.common import box_scores, make_batch
from advmri.attacks.noise import NoiseConfig, adversarial_noise, adversarial_noise_looped, recon_with_noise
from advmri.attacks.rotation import angle_grid, sweep_angles, sweep_angles_looped
from advmri.data.dataset import AnnotatedSlices
from advmri.data.synth import generate_dataset
from advmri.models.networks import build
from advmri.util.perf import default_chunk, keep_freed_memory


def timeit(fn, repeats, sync):
    ts, out = [], None
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def profile_breakdown(prof, cuda: bool) -> dict[str, float]:
    """Seconds in the attack's labelled phases (``record_function`` in ``adversarial_noise``) and in
    FFTs (all of ``aten::_fft_*``, inside both phases), from a finished ``torch.profiler`` run."""
    ev = prof.key_averages()
    tot = (lambda e: e.device_time_total) if cuda else (lambda e: e.cpu_time_total)
    own = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    out = {
        lab: sum(tot(e) for e in ev if e.key == key) / 1e6
        for lab, key in (
            ("forward (recon + loss)", "noise.forward"),
            ("backward", "noise.backward"),
            ("gradient step + projection", "noise.step+project"),
        )
    }
    out["of which FFTs (self)"] = sum(own(e) for e in ev if e.key.startswith("aten::_fft")) / 1e6
    out["of which convolutions (self)"] = (
        sum(own(e) for e in ev if e.key.startswith("aten::") and "conv" in e.key) / 1e6
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--model-config", default="small")
    ap.add_argument("--model", default="varnet")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--boxes", type=int, default=4)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.005, 0.01, 0.025])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--angles", type=int, default=99)
    ap.add_argument("--chunk", type=int, default=None, help="items per pass (default: advmri.util.perf.default_chunk)")
    ap.add_argument("--check-items", type=int, default=2, help="items for the float64 check (0: skip, memory)")
    ap.add_argument("--scan-chunks", type=int, nargs="*", default=[])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cpu":
        keep_freed_memory()  # for both sides alike, as advmri.experiments.run does
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    tmp = tempfile.mkdtemp()
    generate_dataset(a.preset, 2, seed=3, out=tmp, progress=False)
    ds = AnnotatedSlices(tmp)
    n = min(a.boxes, len(ds))
    tb = make_batch([ds[i] for i in range(n)]).to(dev)
    chunk = a.chunk or default_chunk(dev, tb.kspace[0].numel())
    torch.manual_seed(0)
    model = build(a.model, a.model_config).to(dev).freeze()
    rows = []

    # rotation grid on one slice
    one = tb.select([0])
    max_deg = round(0.1 * (a.angles // 2), 6)
    angles = angle_grid(max_deg, 0.1)
    # untimed warm-up of one pass at the batched size (first-call allocations, kernel selection), so
    # that neither side pays it inside its timing even with --repeats 1
    sweep_angles(model, one, angles[:chunk], chunk=chunk)
    tb_, rb = timeit(lambda: sweep_angles(model, one, angles, chunk=chunk), a.repeats, sync)
    tl_, rl = timeit(lambda: sweep_angles_looped(model, one, angles), max(1, a.repeats // 2), sync)
    err = max(float(((rb[k] - rl[k]).abs() / rl[k].abs().clamp_min(1e-8)).max()) for k in ("box_mse", "box_ssim"))
    rows.append(
        dict(
            case=f"rotation grid ({len(angles)} angles, 1 slice, {chunk} per pass)",
            batched_s=tb_,
            looped_s=tl_,
            speedup=tl_ / tb_,
            max_rel_diff=err,
            agree=err < 1e-4,
        )
    )

    # noise attack on boxes x eps
    E = len(a.eps)
    rep = tb.repeat(E)
    eps = torch.tensor(a.eps, device=dev).repeat(n)
    cfg = NoiseConfig(steps=a.steps)

    def batched(m=model, t=rep, e=eps, c=cfg, k=chunk):
        """PGA over ``k`` items per pass, as advmri.experiments.run does."""
        return torch.cat(
            [
                adversarial_noise(m, t.select(list(range(lo, min(lo + k, len(t))))), e[lo : lo + k], c)
                for lo in range(0, len(t), k)
            ]
        )

    def looped(m=model, t=rep, e=eps, c=cfg):
        return adversarial_noise_looped(m, t, e, c)

    batched(t=rep.select(list(range(min(chunk, len(rep))))), e=eps[:chunk], c=NoiseConfig(steps=1))  # warm-up
    tb_, zb = timeit(batched, a.repeats, sync)
    tl_, zl = timeit(looped, max(1, a.repeats // 2), sync)
    with torch.no_grad():
        mb = box_scores(recon_with_noise(model, rep, zb), rep)["box_mse"]
        ml = box_scores(recon_with_noise(model, rep, zl), rep)["box_mse"]
    mse_err = float(((mb - ml).abs() / ml).max())
    # exactness in float64 on the first --check-items items, all steps, one pass for the batch
    k = min(a.check_items, len(rep))
    err64 = float("nan")
    if k:
        m64 = copy.deepcopy(model).double()
        rd = rep.select(list(range(k))).double()
        ed = eps[:k].double()
        zb64 = adversarial_noise(m64, rd, ed, cfg)
        zl64 = looped(m64, rd, ed, cfg)
        err64 = float((zb64 - zl64).flatten(1).norm(dim=1).max() / zl64.flatten(1).norm(dim=1).max().clamp_min(1e-30))
        del m64, rd, zb64, zl64
    rows.append(
        dict(
            case=f"noise PGA ({n} boxes x {E} eps, {a.steps} steps, {chunk} per pass)",
            batched_s=tb_,
            looped_s=tl_,
            speedup=tl_ / tb_,
            max_rel_diff=err64,
            agree=(err64 < 1e-6) if k else mse_err < 0.05,
            float32_final_box_mse_rel_diff=mse_err,
        )
    )

    scan = []
    for c in a.scan_chunks:
        ang = torch.linspace(-4.9, 4.9, max(c, 8)).tolist()
        # timeit calls each closure at once, inside this iteration: the defaults bind this iteration's values
        t_rot, _ = timeit(lambda ang=ang, c=c: sweep_angles(model, one, ang, chunk=c), 1, sync)
        items = rep.select(list(range(min(len(rep), max(c, 4)))))
        t_noise, _ = timeit(
            lambda items=items, c=c: batched(t=items, e=eps[: len(items)], c=NoiseConfig(steps=1), k=c), 1, sync
        )
        scan.append(dict(chunk=c, rotation_s_per_angle=t_rot / len(ang), noise_s_per_item_step=t_noise / len(items)))

    head = (
        f"{a.model}/{a.model_config} on preset {a.preset}, device {a.device}"
        f"{' (' + torch.cuda.get_device_name() + ')' if dev.type == 'cuda' else ''}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, {date.today()}"
    )
    mdl = [
        f"### {head}",
        "",
        "| case | batched (s, median) | looped (s, median) | looped/batched | max rel. diff | agree |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        mdl.append(
            f"| {r['case']} | {r['batched_s']:.2f} | {r['looped_s']:.2f} | {r['speedup']:.2f}x | "
            f"{r['max_rel_diff']:.1e} | {'yes' if r['agree'] else 'NO'} |"
        )
    how = (
        "perturbations after all steps in float64"
        if a.check_items
        else "float64 check skipped (--check-items 0, memory), agreement = float32 final box MSE within 5%"
    )
    mdl += [
        "",
        f"max rel. diff: rotation, box metrics in float32; noise, {how}. "
        f"Float32 final box MSE, batched vs looped: {rows[1]['float32_final_box_mse_rel_diff']:.1e} relative.",
    ]
    if scan:
        mdl += [
            "",
            "Cost per item against items per pass:",
            "",
            "| items per pass | rotation (s/angle) | noise (s/item/step) |",
            "|---|---|---|",
        ]
        mdl += [f"| {r['chunk']} | {r['rotation_s_per_angle']:.3f} | {r['noise_s_per_item_step']:.3f} |" for r in scan]
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        sync()
        t = time.perf_counter()
        with profile(activities=acts) as prof:
            batched()
            sync()
        wall = time.perf_counter() - t
        mdl += [
            "",
            f"Where the batched noise attack's time goes ({n * E} items, {a.steps} steps; profiled wall {wall:.2f} s):",
            "",
            "| part | time (s) | share of wall |",
            "|---|---|---|",
        ]
        for name, sec in profile_breakdown(prof, dev.type == "cuda").items():
            mdl.append(f"| {name} | {sec:.2f} | {sec / wall:.0%} |")
        mdl += [
            "",
            "<details><summary>top ops by self time</summary>",
            "",
            "```",
            prof.key_averages().table(
                sort_by="self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total", row_limit=12
            ),
            "```",
            "</details>",
        ]
    text = "\n".join(mdl) + "\n"
    print(text)
    if a.out:
        out = Path(a.out)
        prev = out.read_text() if out.is_file() else "# Benchmarks: batched attacks vs per-sample loop\n\n"
        out.write_text(prev + "\n" + text)
        js = out.with_suffix(".json")
        runs = json.loads(js.read_text()) if js.is_file() else []
        runs.append(dict(setup=head, argv=sys.argv[1:] if argv is None else list(argv), rows=rows, chunk_scan=scan))
        js.write_text(json.dumps(runs, indent=1))
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
