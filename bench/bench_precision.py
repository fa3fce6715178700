"""bf16 vs fp32 for the noise attack end to end, on the paper's boxes (both small models).

    .venv/bin/python bench/bench_precision.py [--max-targets 12] [--out bench/RESULTS.md]

For each model: the full noise run of the paper sweep (12 boxes x 7 eps, 10 PGA steps, 5 random draws)
in fp32 and in bf16 (autocast of the U-Net convolution blocks, ``AttackRun.precision``), side by side in
one process: wall time and ratio, final adversarial box MSE per (box, eps) of bf16 relative to fp32
(mean and max of |bf16/fp32 - 1|), the paper's conclusion (adversarial minus random box SSIM per eps) in
both, and the cosine between the fp32 and bf16 input gradients of the box loss on 4 items.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch

from advmri.attacks.common import attack_loss, box_weights, make_batch
from advmri.attacks.noise import recon_with_noise
from advmri.data.dataset import AnnotatedSlices
from advmri.experiments.run import AttackRun, execute, load_model, select_targets


def grad_cosine(model_path: str, data: str, n: int = 4) -> float:
    ds = AnnotatedSlices(data)
    tb = make_batch([ds[i] for i in select_targets(ds, n)])
    m = load_model(model_path)
    wb = box_weights(tb.boxes, tb.crop)
    g = {}
    for prec in ("fp32", "bf16"):
        m.set_precision(prec)
        z = (
            1e-3
            * tb.kspace.abs().mean()
            * torch.randn(tb.kspace.shape, generator=torch.Generator().manual_seed(0), dtype=tb.kspace.dtype)
        ).requires_grad_(True)
        loss = attack_loss(recon_with_noise(m, tb, z), tb.target, wb, None, "mse").sum()
        (g[prec],) = torch.autograd.grad(loss, z)
    a, b = (torch.view_as_real(g[p]).flatten() for p in ("fp32", "bf16"))
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/synthetic/small/test")
    ap.add_argument("--max-targets", type=int, default=12)
    ap.add_argument("--out", default="bench/RESULTS.md")
    a = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    for kind in ("unet", "varnet"):
        ck = f"models/{kind}-small.pt"
        res = {}
        for prec in ("fp32", "bf16"):
            run = AttackRun.from_params("noise", model=ck, data_dir=a.data, max_targets=a.max_targets, precision=prec)
            t0 = time.perf_counter()
            df, _ = execute(run, progress=False)
            res[prec] = (time.perf_counter() - t0, df)
        key = ["file", "slice", "bx", "by", "bw", "bh", "param"]
        adv = {p: res[p][1][res[p][1].kind == "adversarial"].set_index(key).sort_index() for p in res}
        live = adv["fp32"].index.get_level_values("param") > 0
        rel = (adv["bf16"]["box_mse"][live] / adv["fp32"]["box_mse"][live] - 1).abs()
        concl = {}
        for p, (_, df) in res.items():
            per = df.groupby(["kind", "param", "file", "slice", "bx", "by", "bw", "bh"])["box_ssim"].mean()
            d = (per["adversarial"] - per["random"]).groupby("param").mean()
            concl[p] = {f"{k:g}": round(float(v), 3) for k, v in d.items()}
        rows.append(
            dict(
                model=kind,
                fp32_s=round(res["fp32"][0], 1),
                bf16_s=round(res["bf16"][0], 1),
                ratio=round(res["fp32"][0] / res["bf16"][0], 2),
                box_mse_rel_mean=round(float(rel.mean()), 4),
                box_mse_rel_max=round(float(rel.max()), 4),
                grad_cosine=round(grad_cosine(ck, a.data), 4),
                adv_minus_random=concl,
                items=int(live.sum()),
            )
        )
        print(rows[-1], flush=True)
    stamp = (
        f"{datetime.date.today()} · {platform.processor() or platform.machine()} · torch {torch.__version__} · "
        f"{torch.get_num_threads()} threads"
    )
    lines = [
        f"\n## bf16 vs fp32, noise attack end to end (`bench/bench_precision.py`, {stamp})\n",
        f"Paper sweep settings, {a.max_targets} boxes x 7 eps, 10 PGA steps, 5 random draws; one process, "
        "fp32 then bf16.\n",
        "| model | fp32 s | bf16 s | fp32/bf16 | box MSE rel. diff, mean | rel. diff, max | grad cosine |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['fp32_s']} | {r['bf16_s']} | {r['ratio']}x | {r['box_mse_rel_mean']:.2%} | "
            f"{r['box_mse_rel_max']:.2%} | {r['grad_cosine']} |"
        )
    lines.append("\nAdversarial minus random box SSIM per eps (the paper's conclusion), fp32 / bf16:\n")
    for r in rows:
        lines.append(
            f"- {r['model']}: "
            + ", ".join(
                f"{e}: {r['adv_minus_random']['fp32'][e]} / {r['adv_minus_random']['bf16'][e]}"
                for e in r["adv_minus_random"]["fp32"]
            )
        )
    out = Path(a.out)
    out.write_text(out.read_text() + "\n".join(lines) + "\n" if out.is_file() else "\n".join(lines) + "\n")
    js = out.with_suffix(".json")
    blob = json.loads(js.read_text()) if js.is_file() else []
    blob = blob if isinstance(blob, list) else [blob]
    js.write_text(json.dumps(blob + [dict(case="precision", stamp=stamp, rows=rows)], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
