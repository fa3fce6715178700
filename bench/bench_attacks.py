#!/usr/bin/env python
"""Batched attacks vs a straightforward per-sample loop, same inputs, one process.

    python bench/bench_attacks.py --out bench/RESULTS.md [--device cuda] [--model-config paper --preset fastmri]

Cases: rotation grid (99 angles) on one slice -- batched (``sweep_angles``, chunked) vs one
angle per forward pass; noise attack on B boxes x E eps values -- batched (one PGA over all
B*E items) vs one (box, eps) per forward/backward pass. Medians over ``--repeats``; the script
checks that both give the same numbers (rotation: every metric within 1e-4 relative; noise:
first-step perturbations within 1e-4 relative, final box MSE within 5%) and writes a Markdown
table plus JSON. ``--profile`` adds a torch.profiler table of the batched noise attack.
"""

from __future__ import annotations

import argparse
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
from advmri.attacks.noise import NoiseConfig, adversarial_noise, recon_with_noise
from advmri.attacks.rotation import angle_grid, sweep_angles, sweep_angles_looped
from advmri.data.dataset import AnnotatedSlices
from advmri.data.synth import generate_dataset
from advmri.models import build


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
    out = {lab: sum(tot(e) for e in ev if e.key == key) / 1e6
           for lab, key in (("forward (recon + loss)", "noise.forward"), ("backward", "noise.backward"),
                            ("gradient step + projection", "noise.step+project"))}
    out["of which FFTs (self)"] = sum(own(e) for e in ev if e.key.startswith("aten::_fft")) / 1e6
    out["of which convolutions (self)"] = sum(own(e) for e in ev if e.key.startswith("aten::") and "conv" in e.key) / 1e6
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
    ap.add_argument("--chunk", type=int, default=33)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    tmp = tempfile.mkdtemp()
    generate_dataset(a.preset, 2, seed=3, out=tmp, progress=False)
    ds = AnnotatedSlices(tmp)
    n = min(a.boxes, len(ds))
    tb = make_batch([ds[i] for i in range(n)]).to(dev)
    torch.manual_seed(0)
    model = build(a.model, a.model_config).to(dev).freeze()
    rows = []

    # rotation grid on one slice
    one = tb.select([0])
    max_deg = round(0.1 * (a.angles // 2), 6)
    angles = angle_grid(max_deg, 0.1)
    tb_, rb = timeit(lambda: sweep_angles(model, one, angles, chunk=a.chunk), a.repeats, sync)
    tl_, rl = timeit(lambda: sweep_angles_looped(model, one, angles), max(1, a.repeats // 2), sync)
    err = max(float(((rb[k] - rl[k]).abs() / rl[k].abs().clamp_min(1e-8)).max()) for k in ("box_mse", "box_ssim"))
    rows.append(dict(case=f"rotation grid ({len(angles)} angles, 1 slice)", batched_s=tb_, looped_s=tl_,
                     speedup=tl_ / tb_, max_rel_diff=err, agree=err < 1e-4))

    # noise attack on boxes x eps
    E = len(a.eps)
    rep = tb.repeat(E)
    eps = torch.tensor(a.eps, device=dev).repeat(n)
    cfg = NoiseConfig(steps=a.steps)

    def batched():
        return adversarial_noise(model, rep, eps, cfg)

    def looped():
        return torch.cat([adversarial_noise(model, rep.select([i]), eps[i:i + 1], cfg) for i in range(len(rep))])

    tb_, zb = timeit(batched, a.repeats, sync)
    tl_, zl = timeit(looped, max(1, a.repeats // 2), sync)
    with torch.no_grad():
        mb = box_scores(recon_with_noise(model, rep, zb), rep)["box_mse"]
        ml = box_scores(recon_with_noise(model, rep, zl), rep)["box_mse"]
    one_b = adversarial_noise(model, rep, eps, NoiseConfig(steps=1))
    one_l = torch.cat([adversarial_noise(model, rep.select([i]), eps[i:i + 1], NoiseConfig(steps=1)) for i in range(len(rep))])
    step_err = float((one_b - one_l).flatten(1).norm(dim=1).max() / one_l.flatten(1).norm(dim=1).max())
    mse_err = float(((mb - ml).abs() / ml).max())
    rows.append(dict(case=f"noise PGA ({n} boxes x {E} eps, {a.steps} steps)", batched_s=tb_, looped_s=tl_,
                     speedup=tl_ / tb_, max_rel_diff=max(step_err, 0.0), agree=step_err < 1e-4 and mse_err < 0.05,
                     final_box_mse_rel_diff=mse_err))

    head = (f"{a.model}/{a.model_config} on preset {a.preset}, device {a.device}"
            f"{' (' + torch.cuda.get_device_name() + ')' if dev.type == 'cuda' else ''}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, {date.today()}")
    md = [f"### {head}", "", "| case | batched (s, median) | looped (s, median) | looped/batched | max rel. diff | agree |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['case']} | {r['batched_s']:.2f} | {r['looped_s']:.2f} | {r['speedup']:.2f}x | "
                  f"{r['max_rel_diff']:.1e} | {'yes' if r['agree'] else 'NO'} |")
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        sync()
        t = time.perf_counter()
        with profile(activities=acts) as prof:
            batched()
            sync()
        wall = time.perf_counter() - t
        md += ["", f"Where the batched noise attack's time goes ({n * E} items, {a.steps} steps; "
               f"profiled wall {wall:.2f} s):", "", "| part | time (s) | share of wall |", "|---|---|---|"]
        for name, sec in profile_breakdown(prof, dev.type == "cuda").items():
            md.append(f"| {name} | {sec:.2f} | {sec / wall:.0%} |")
        md += ["", "<details><summary>top ops by self time</summary>", "", "```",
               prof.key_averages().table(sort_by="self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total",
                                         row_limit=12), "```", "</details>"]
    text = "\n".join(md) + "\n"
    print(text)
    if a.out:
        out = Path(a.out)
        prev = out.read_text() if out.is_file() else "# Benchmarks: batched attacks vs per-sample loop\n\n"
        out.write_text(prev + "\n" + text)
        out.with_suffix(".json").write_text(json.dumps(dict(setup=head, rows=rows), indent=1))
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
