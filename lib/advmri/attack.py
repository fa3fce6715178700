"""CLI: ``python -m advmri.attack --model CKPT --data DIR --attack noise|rotation --out results.csv``."""

from __future__ import annotations

import argparse
import sys

from advmri.attacks.noise import EPS_GRID, NoiseConfig
from advmri.attacks.rotation import RotationConfig
from advmri.run import AttackRun, execute, write_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m advmri.attack", description=__doc__)
    ap.add_argument("--model", required=True, help="checkpoint .pt, or official:varnet[:PATH] / official:unet[:PATH]")
    ap.add_argument("--data", required=True)
    ap.add_argument("--annotations", default=None)
    ap.add_argument("--attack", choices=["noise", "rotation"], default="noise")
    ap.add_argument("--acceleration", type=int, default=8)
    ap.add_argument("--max-targets", type=int, default=8)
    ap.add_argument("--eps", type=float, nargs="+", default=list(EPS_GRID))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--step-size", type=float, default=0.5)
    ap.add_argument("--loss", default="mse", choices=["mse", "ssim", "mse+ssim"])
    ap.add_argument("--restarts", type=int, default=0)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--random-draws", type=int, default=5)
    ap.add_argument("--max-angle", type=float, default=4.9)
    ap.add_argument("--angle-step", type=float, default=0.1)
    ap.add_argument("--chunk", type=int, default=None, help="items per forward pass (default: 4 on CPU, 16 on CUDA)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True, help="result table (.csv or .parquet)")
    a = ap.parse_args(argv)
    run = AttackRun(
        model=a.model, data=a.data, annotations=a.annotations, attack=a.attack, acceleration=a.acceleration,
        max_targets=a.max_targets, device=a.device, chunk=a.chunk,
        noise=NoiseConfig(eps=tuple(a.eps), steps=a.steps, step_size=a.step_size, loss=a.loss, restarts=a.restarts,
                          momentum=a.momentum, random_draws=a.random_draws, seed=a.seed),
        rotation=RotationConfig(max_angle=a.max_angle, angle_step=a.angle_step, random_draws=a.random_draws,
                                seed=a.seed),
    )
    df, ex = execute(run)
    write_table(df, a.out)
    print(f"{len(df)} rows -> {a.out} ({ex['seconds']:.1f} s)")
    summ = df.groupby(["kind", "param"])[["box_ssim", "box_psnr"]].mean()
    print(summ.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
