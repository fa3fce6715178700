"""CLI: ``python -m advmri.app.attack --model CKPT --data DIR --attack noise|rotation --out results.csv``.

Bad parameters and files stop before any work with one line, ``error: <parameter or file>: <problem>``
(exit status 2; ``--debug`` shows the traceback). An existing ``--out`` is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys

from advmri.attacks.noise import EPS_GRID, LOSSES
from advmri.data.dataset import describe_report
from advmri.util.locks import exclusive
from advmri.util.errors import ParameterError, cli, prog
from advmri.util.paths import project_path
from advmri.experiments.run import AttackRun, check_table_path, execute, meta_path, write_results


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog("advmri.app.attack"), description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint .pt, or official:varnet[:PATH] / official:unet[:PATH]")
    ap.add_argument("--data", required=True)
    ap.add_argument("--annotations", default=None)
    ap.add_argument("--attack", choices=["noise", "rotation"], default="noise")
    ap.add_argument("--acceleration", type=int, default=8)
    ap.add_argument("--max-targets", type=int, default=8)
    ap.add_argument("--labels", nargs="+", default=None, help="attack only boxes with these fastMRI+ labels")
    ap.add_argument("--eps", type=float, nargs="+", default=list(EPS_GRID))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--step-size", type=float, default=0.5)
    ap.add_argument("--loss", default="mse", choices=list(LOSSES))
    ap.add_argument("--restarts", type=int, default=0)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--random-draws", type=int, default=5)
    ap.add_argument("--max-angle", type=float, default=4.9)
    ap.add_argument("--angle-step", type=float, default=0.1)
    ap.add_argument("--bounds", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    ap.add_argument("--chunk", type=int, default=None, help="items per forward pass (default: 4 on CPU, 16 on CUDA)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True, help="result table (.csv or .parquet)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing --out")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    a = ap.parse_args(argv)
    common = dict(model=a.model, data_dir=a.data, annotations=a.annotations, acceleration=a.acceleration,
                  max_targets=a.max_targets, labels=a.labels, chunk=a.chunk, device=a.device, seed=a.seed,
                  random_draws=a.random_draws)
    if a.attack == "noise":
        run = AttackRun.from_params("noise", eps=a.eps, steps=a.steps, step_size=a.step_size, loss=a.loss,
                                    restarts=a.restarts, momentum=a.momentum, **common)
    else:
        run = AttackRun.from_params("rotation", max_angle=a.max_angle, angle_step=a.angle_step, bounds=a.bounds,
                                    **common)
    run.check_inputs()
    data = project_path(a.data)
    out = check_table_path(a.out, overwrite=a.force, inputs=[a.annotations, a.model, data / "knee.csv",
                                                             data.parent / "knee.csv"])
    h5dir = data / "multicoil" if (data / "multicoil").is_dir() else data
    if out.parent.resolve() == h5dir.resolve():
        raise ParameterError(f"out: {out} is inside the .h5 folder {h5dir}; fastMRI's SliceDataset would open it")
    with exclusive(out, "attack run (python -m advmri.app.attack)"):  # one writer per result table
        df, ex = execute(run)
        write_results(df, out, run, ex)  # table and metadata together or not at all
        meta = meta_path(out)
    print(f"{len(df)} rows -> {out} ({ex['seconds']:.1f} s); run metadata -> {meta}")
    print(f"annotations: {describe_report(ex['annotations'])}")
    summ = df.groupby(["kind", "param"])[["box_ssim", "box_psnr"]].mean()
    print(summ.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
