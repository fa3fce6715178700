"""CLI: ``advmri attack --model SPEC --data DIR --attack noise|rotation --out results.csv [options]``.

Every option is generated from the run schema (:class:`advmri.experiments.run.AttackRun`, the noise attack's
:class:`~advmri.attacks.noise.NoiseConfig`, the rotation attack's :class:`~advmri.attacks.rotation.RotationConfig`),
so every parameter of a committed run can be given here and ``--help`` states the defaults the code uses
(:func:`run_argv` writes the options of a run; a test replays every committed ``params.json`` through it).

Bad parameters and files stop before any work with one line, ``error: <parameter or file>: <problem>``
(exit status 2; ``--debug`` shows the traceback). An existing ``--out`` is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys

from advmri.attacks.noise import NoiseConfig
from advmri.attacks.rotation import RotationConfig
from advmri.data.dataset import describe_report
from advmri.experiments.run import AttackRun, check_table_path, execute, meta_path, write_results
from advmri.util.errors import ParameterError, cli, prog
from advmri.util.locks import exclusive
from advmri.util.paths import project_path
from advmri.util.schema import OneLineParser, add_arguments, cli_fields, given, to_argv

__all__ = ["SHARED", "parser", "run_from_args", "run_argv", "main"]

# fields in both attacks' schemas (seed, random_draws, target): one option each, for the run's attack
SHARED = frozenset(cli_fields(NoiseConfig)) & frozenset(cli_fields(RotationConfig))


def parser(name: str = "advmri.app.attack") -> argparse.ArgumentParser:
    """The attack CLI: the run's options, then each attack's own (options of the other attack are refused)."""
    ap = OneLineParser(prog=prog(name), description=__doc__.split("\n\n")[0])
    add_arguments(ap, AttackRun, "run")
    add_arguments(ap, NoiseConfig, "noise attack (--attack noise; seed, random-draws and target apply to both)")
    add_arguments(ap, RotationConfig, "rotation attack (--attack rotation)", skip=SHARED)
    out = ap.add_argument_group("output")
    out.add_argument("--out", required=True, help="result table (.csv or .parquet)")
    out.add_argument("--force", action="store_true", help="overwrite an existing --out")
    out.add_argument("--debug", action="store_true", help="show tracebacks")
    return ap


def run_from_args(ns: argparse.Namespace) -> AttackRun:
    """The run the parsed options describe (schema defaults for the rest), through the notebooks' and the
    sweep's :meth:`AttackRun.from_params`, so all three give one run id for one parameter set."""
    run = given(ns, AttackRun)
    attack = run.pop("attack", "noise")
    own, other = (NoiseConfig, RotationConfig) if attack == "noise" else (RotationConfig, NoiseConfig)
    stray = sorted(set(given(ns, other)) - set(cli_fields(own)))
    if stray:
        raise ParameterError(
            f"{stray[0]}: a {'rotation' if attack == 'noise' else 'noise'}-attack option, but "
            f"this run is --attack {attack}"
        )
    params = {"data_dir" if k == "data" else k: v for k, v in run.items()}
    return AttackRun.from_params(attack, **params, **given(ns, own))


def run_argv(run: AttackRun) -> list[str]:
    """The options that make ``run`` (without ``--out``): ``run_from_args(parser().parse_args(argv)).id == run.id``."""
    own = run.noise if run.attack == "noise" else run.rotation
    return to_argv(run) + to_argv(own)


@cli
def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    run = run_from_args(a)
    run.check_inputs()
    data = project_path(run.data)
    inputs = [run.annotations, run.model, data / "knee.csv", data.parent / "knee.csv"]
    out = check_table_path(a.out, overwrite=a.force, inputs=[i for i in inputs if i is not None])
    h5dir = data / "multicoil" if (data / "multicoil").is_dir() else data
    if out.parent.resolve() == h5dir.resolve():
        raise ParameterError(f"out: {out} is inside the .h5 folder {h5dir}; fastMRI's SliceDataset would open it")
    with exclusive(out, "attack run (advmri attack)"):  # one writer per result table
        df, ex = execute(run)
        write_results(df, out, run, ex)  # table and metadata together or not at all
        meta = meta_path(out)
    print(f"{len(df)} rows -> {out} ({ex['seconds']:.1f} s); run metadata -> {meta}")
    print(f"annotations: {describe_report(ex['annotations'])}")
    summ = df.groupby(["kind", "param"])[["box_ssim", "box_psnr"]].mean()
    print(summ.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(None))
