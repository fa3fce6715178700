"""Replaced by the sweep CLI's SLURM engine; kept as a thin wrapper that says so.

    python -m advmri.experiments.sweep SWEEP.yaml --engine slurm --jobs 4 --partition cpu [--gpus 1 --device cuda]

Every resource is an option there (or a ``slurm:`` block of the sweep YAML):
``python -m advmri.experiments.sweep --help``.
This wrapper passes its arguments on unchanged.
"""

import sys

from advmri.experiments.sweep import main

if __name__ == "__main__":
    print(
        "note: sweeps/slurm.py is replaced by `python -m advmri.experiments.sweep SWEEP.yaml --engine slurm ...`; "
        "running that",
        file=sys.stderr,
    )
    sys.exit(main([*sys.argv[1:2], "--engine", "slurm", *sys.argv[2:]]))
