"""The ``advmri`` console script: one entry point, a subcommand per job.

``advmri <command> [options]`` runs the same code as ``python -m advmri.<module>`` (both keep working);
``advmri --help`` lists the commands, ``advmri <command> --help`` shows that command's options (for
``benchmark`` generated from :class:`advmri.app.benchmark.BenchmarkConfig`), ``advmri --version`` the version.
"""

from __future__ import annotations

import importlib
import sys

from advmri import __version__
from advmri.util.errors import PROG

__all__ = ["COMMANDS", "main"]

# command -> (module with main(argv), one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "benchmark": ("advmri.app.benchmark", "benchmark any model under the threat models; write a robustness card"),
    "replay": ("advmri.app.replay", "check a robustness card from its stored perturbations (no attack)"),
    "leaderboard": ("advmri.report.leaderboard", "rank robustness cards by robust box PSNR (md/html/csv)"),
    "attack": ("advmri.app.attack", "one attack run of one model: a result table"),
    "sweep": ("advmri.experiments.sweep", "a grid of attack runs from a YAML file (threads, Dask or SLURM; resumes)"),
    "train": ("advmri.models.train", "train a VarNet or U-Net checkpoint"),
    "verify": ("advmri.experiments.verify", "recompute a sample of committed runs and compare bit for bit"),
    "recontrol": ("advmri.experiments.recontrol", "recompute only the random control of committed noise runs"),
    "explore": ("advmri.app.explore", "the epsilon explorer (Voila) on 127.0.0.1"),
    "lab": ("advmri.app.lab", "JupyterLab on the notebooks, on 127.0.0.1"),
    "paper": ("advmri.report.book", "build the article (HTML book and PDF) from the committed results"),
    "pipeline": ("advmri.app.pipeline", "the main job: data, models, notebooks, sweeps, analysis, article"),
    "data": ("advmri.data.synth", "generate the synthetic multi-coil knee data set"),
    "modelcard": ("advmri.report.modelcard", "write the model card of an advmri checkpoint"),
    "envcheck": ("advmri.app.envcheck", "check the installed environment (CPU torch, no torchvision)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: advmri <command> [options]   (advmri {__version__})",
        "",
        "Realistic adversarial perturbations against deep-learning MRI reconstruction.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "advmri <command> --help shows a command's options; advmri --version the version."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``advmri <command> [options]``: run that command's ``main``; ``--help`` lists the commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"advmri {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        from advmri.util.errors import did_you_mean

        print(
            f"error: command: unknown command {name!r}{did_you_mean(name, COMMANDS)}; advmri --help lists them",
            file=sys.stderr,
        )
        return 2
    module = COMMANDS[name][0]
    PROG[module] = f"advmri {name}"
    mod = importlib.import_module(module)
    code = mod.main(rest)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
